"""``python -m talker.preprocess video=<mp4> out=<dir> [key=value ...]``: a real video -> a talker dataset.

Keys (see :class:`talker.preprocess.Options`): landmarker, size, seconds, val_fraction, smooth, focal,
min_detected, audio_tolerance, bg_margin. A rerun with the same keys resumes: finished steps are skipped.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from talker.config_checks import bound_of, cli_value
from talker.errors import ConfigError, one_line_errors
from talker.preprocess.pipeline import REPORT, Options, preprocess
from talker.preprocess.video import PreprocessError

USAGE = "usage: python -m talker.preprocess video=<video file> out=<dataset folder> [key=value ...]"


def parse_options(argv: list[str]) -> Options:
    fields = {f.name: f for f in dataclasses.fields(Options)}
    values: dict = {}
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or key not in fields:
            raise PreprocessError(f"{arg}: not understood; keys: {', '.join(fields)}")
        kind = type(fields[key].default) if fields[key].default is not dataclasses.MISSING else Path
        if kind is Path:
            values[key] = Path(value)
            continue
        try:
            number = cli_value(key, value, f"preprocess.{key}")  # the range declared in talker.config_checks
            values[key] = kind(number)
            if values[key] != number:
                raise ValueError(value)
        except (ValueError, TypeError, ConfigError) as exc:
            bound = bound_of(f"preprocess.{key}")
            expected = bound.describe() if bound is not None else f"a {kind.__name__}"
            raise PreprocessError(f"{key}={value}: must be {expected}") from exc
    missing = [k for k in ("video", "out") if k not in values]
    if missing:
        raise PreprocessError(f"missing {', '.join(missing)}; {USAGE}")
    return Options(**values)


def main(argv: list[str] | None = None) -> None:
    with one_line_errors("talker.preprocess"):
        options = parse_options(sys.argv[1:] if argv is None else argv)
        status = preprocess(options)
    print("[talker.preprocess] " + ", ".join(f"{k}: {v if v == 'skipped' else f'{v} s'}" for k, v in status.items()))
    print(f"[talker.preprocess] dataset {options.out} (report: {options.out / REPORT}, preview: {options.out / 'preview.png'})")


if __name__ == "__main__":
    main()
