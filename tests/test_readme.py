"""Every ``python -m talker.<entry> ...`` command shown in the README and in docs/ parses: Hydra entries
compose every cell against the real config tree (what ``--cfg job`` does), the others go through their
own argument parsers. Placeholders (``<clip.mp4>``, ``<run folder>``) stand for a value."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from pathlib import Path

import pytest

from talker.config import ConfigError, check_overrides, compose_config

REPO = Path(__file__).resolve().parent.parent
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
COMMAND = re.compile(r"python -m (talker[\w.]*)([^`\n]*)")


def placeholder(match: re.Match[str]) -> str:
    """``<a | b>`` -> ``a``, ``<run folder>`` -> ``run_folder``."""
    return match.group(1).split("|")[0].strip().replace(" ", "_") or "x"


def commands(page: Path) -> list[tuple[str, list[str], str, str | None]]:
    """(entry module, arguments, the line as shown, the error shown after it if any) of every command
    on a page. A command followed by ``talker.<entry>: error: ...`` is an example of a failure."""
    text = page.read_text().replace("\\\n", " ")
    found = []
    for match in COMMAND.finditer(text):
        shown = match.group(0).strip()
        rest = re.sub(r"\s+#.*$", "", match.group(2))  # a comment after the command
        rest = re.sub(r"<([^<>]*)>", placeholder, rest).replace("[", "").replace("]", "").replace("...", "")
        after = re.match(r"\n\s*talker\.[\w.]+: error: (.*)", text[match.end():])
        found.append((match.group(1).rstrip("."), shlex.split(rest), shown, after.group(1) if after else None))
    return found


def fit(args: list[str]) -> None:
    check_overrides(args)


def key_values(keys: set[str], required: set[str], tags: bool = True) -> Callable[[list[str]], None]:
    def check(args: list[str]) -> None:
        from talker.evaluate import parse_arguments

        values, _, overrides, bad = parse_arguments(args, keys, tags=tags)
        assert not bad, f"not understood: {bad}"
        assert required & set(values), f"needs one of {sorted(required)}"
        if overrides:
            compose_config(overrides)  # evaluator overrides are config keys
    return check


def evaluate(args: list[str]) -> None:
    from talker.evaluate import FRAMES_KEYS, RUN_KEYS

    mode = RUN_KEYS if any(a.startswith("run=") for a in args) else FRAMES_KEYS
    key_values(mode, {"run", "frames"})(args)


def drive(args: list[str]) -> None:
    from talker.drive import KEYS

    key_values(KEYS, {"run"}, tags=False)(args)
    assert any(a.startswith("audio=") for a in args), "needs audio="


def wav2lip(args: list[str]) -> None:
    from talker.baselines.wav2lip import KEYS

    key_values(KEYS, {"frames"}, tags=False)(args)


def preprocess(args: list[str]) -> None:
    from talker.preprocess.__main__ import parse_options

    parse_options(args)


def audio(args: list[str]) -> None:
    from talker.audio.__main__ import build_parser

    build_parser().parse_args(args)


def weights(args: list[str]) -> None:
    from talker.weights.__main__ import build_parser

    build_parser().parse_args(args)


def study(args: list[str]) -> None:
    from talker.study.__main__ import parse

    parse(args)


def install(args: list[str]) -> None:
    assert not args, "python -m talker.install takes no arguments"


ENTRIES: dict[str, Callable[[list[str]], None]] = {
    "talker.fit": fit, "talker.install": install, "talker.evaluate": evaluate, "talker.drive": drive, "talker.preprocess": preprocess,
    "talker.audio": audio, "talker.weights": weights, "talker.baselines.wav2lip": wav2lip, "talker.study": study,
}
# Each distinct command once (the first page that shows it), composing a grid is not free.
CASES = list({(entry, tuple(args)): (page, entry, args, shown, error) for page in reversed(PAGES)
              for entry, args, shown, error in commands(page)}.values())


def test_the_readme_shows_commands_of_every_kind() -> None:
    shown = {entry for page, entry, *_ in CASES if page.name == "README.md"}
    assert {"talker.fit", "talker.evaluate", "talker.drive", "talker.preprocess", "talker.weights"} <= shown
    assert len(CASES) >= 40


@pytest.mark.parametrize(("page", "entry", "args", "shown", "error"), CASES,
                         ids=[f"{p.relative_to(REPO)}:{s[10:70]}" for p, _, _, s, _ in CASES])
def test_the_command_parses(page: Path, entry: str, args: list[str], shown: str, error: str | None) -> None:
    assert entry in ENTRIES, f"{page.name} shows `{shown}`: {entry} is not an entry point (or has no check here)"
    if error is None:
        ENTRIES[entry](args)
        return
    with pytest.raises(ConfigError) as info:  # the page shows this command failing: it must fail so
        ENTRIES[entry](args)
    assert str(info.value) == error
