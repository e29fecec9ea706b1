"""Wav2Lip (Prajwal et al. 2020), R2-Talker's Table 1 row: not trained here; its videos are scored here.

::

    python -m talker.baselines.wav2lip frames=<result.mp4 | frame folder> [reference=<dataset>] [split=val]
        [audio=<wav>] [setting=self_driven] [out=<folder>] [<evaluator override> ...]

Run Wav2Lip elsewhere (its repository's ``inference.py`` with the Wav2Lip+GAN checkpoint, as R2-Talker
did) on the held-out frames of a dataset and their audio, then score its result with the shared
evaluator (``talker.evaluate``'s external-frames path): frames are matched to the ``reference``
dataset's ``split`` by position, its landmarks and ``aud.wav`` are used (``audio`` replaces the latter).

Wav2Lip generates only the lower face and pastes it back onto the input frame, which is the ground
truth in the self-driven setting, so full-frame fidelity metrics (PSNR, SSIM, LPIPS) measure the
paste-back, not the method: they are not computed and metrics.json lists them under
``not_applicable``; Table 1 shows N/A for them, as the paper does. FID, LMD and Sync are computed.

Results go to ``out`` (default ``runs/baselines/wav2lip/<setting>``, inside the baselines grid's
folder, so the tables written when ``python -m talker.fit experiment=baselines`` ends include the
row), tagged ``method=wav2lip, setting=<setting>``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from talker.errors import one_line_errors
from talker.evaluation import evaluate_frames
from talker.runs import RunFolder
from talker.utils.cli import parse_arguments

METHOD = "wav2lip"
NOT_APPLICABLE = ("psnr", "ssim", "lpips")
REASON = (
    "not applicable: Wav2Lip pastes its generated lower face back onto the ground-truth frame, so the "
    "metric measures the paste-back, not the method (R2-Talker Sec. 4.2 sets it to N/A)"
)
DEFAULT_OUT = Path("runs") / "baselines" / METHOD
KEYS = {"frames", "reference", "split", "audio", "setting", "out"}
USAGE = (
    "usage: python -m talker.baselines.wav2lip frames=<video | frame folder> [reference=<dataset>] [split=val] "
    "[audio=<wav>] [setting=self_driven] [out=<folder>] [callbacks.evaluation.evaluator.<key>=<value> ...]"
)


def score_wav2lip(
    frames: str | Path,
    reference: str | Path | None = None,
    split: str = "val",
    audio: str | Path | None = None,
    setting: str = "self_driven",
    out: str | Path | None = None,
    overrides: Sequence[str] = (),
) -> tuple[dict, Path]:
    """Score Wav2Lip's frames; returns the summary metrics and the folder holding metrics.json."""
    out = Path(out) if out is not None else DEFAULT_OUT / setting
    return evaluate_frames(
        frames, reference, split, audio, out, tags={"method": METHOD, "setting": setting}, overrides=overrides,
        not_applicable={name: REASON for name in NOT_APPLICABLE},
    )


def main(argv: list[str] | None = None) -> None:
    args, _, overrides, bad = parse_arguments(sys.argv[1:] if argv is None else argv, KEYS, tags=False)
    if bad or "frames" not in args:
        problem = f"not understood: {', '.join(bad)}" if bad else "frames= is needed"
        print(f"talker.baselines.wav2lip: error: {problem}; {USAGE}", file=sys.stderr)
        sys.exit(2)
    with one_line_errors("talker.baselines.wav2lip"):
        summary, folder = score_wav2lip(
            args["frames"], args.get("reference"), args.get("split", "val"), args.get("audio"),
            args.get("setting", "self_driven"), args.get("out"), overrides,
        )
    print("[talker] " + (", ".join(f"{k}={v:.4f}" for k, v in summary.items()) or "no metric computable"))
    print(f"[talker] wrote {RunFolder(folder).metrics_file} ({', '.join(NOT_APPLICABLE)}: not applicable to Wav2Lip)")


if __name__ == "__main__":
    main()
