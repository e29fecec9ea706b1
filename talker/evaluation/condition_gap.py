"""Held-out mouths under another frame's condition: what ``talker.metrics.ConditionGap`` scores.

Frame ``i`` of ``n`` held-out frames is paired with frame ``n - 1 - i`` (the split reversed), or with
``(i + n // 2) % n`` where that is ``i`` itself (the middle frame of an odd split). Only the rays of
the frame's mouth box (:func:`talker.data.landmarks.mouth_box`, the region ``psnr_mouth`` scores)
are rendered again, under the other frame's condition, rounded to 8 bits as the frame itself is, and
pasted into a copy of the frame: the other-condition frame differs from the scored one only there.

The eye condition gap does the same in the frame's eyes box with only the eye ratio swapped
(:func:`under_other_eyes`), for heads a part of which reads the eye ratio. Its partner is not the
paired frame: the eye ratio it renders under is the one of the clip's frames (training and held-out,
the split's landmark track) farthest from the frame's own (:func:`other_eye_ratio`): closed eyes for an
open frame, the widest-open for a closed one. Blinks are rare (the synthetic clip: 0.15-0.3 s every
2-7 s), so a held-out split often has none, and the paired frame's ratio was then the frame's own:
the gap could not see anything (docs/lokitalk.md, Table 2).

The held-out evaluation (:func:`talker.evaluation.heldout.render_eval_frames`) adds both to every frame
it renders; :func:`mouth_frames` renders the mouth boxes alone, both ways, for scoring many
checkpoints cheaply (``benchmarks/hearing_curve.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import Tensor
from tqdm import tqdm

from talker.data.datamodule import RAY_KEYS, Frames
from talker.data.landmarks import eyes_box, mouth_box
from talker.data.layout import Split
from talker.fields.inputs import EYE, eye_aspect_ratio, eye_ratio
from talker.head.model import TalkingHead
from talker.metrics import PSNR, ConditionGap, EvalFrame, Evaluator
from talker.utils.io import to_uint8


def other_frame(index: int, count: int) -> int | None:
    """The held-out frame whose condition frame ``index`` of ``count`` is rendered under (None: no other frame)."""
    if count < 2:
        return None
    other = count - 1 - index
    return other if other != index else (index + count // 2) % count


def render_box(
    head: TalkingHead, item: Mapping[str, Any], box: tuple[int, int, int, int], cond: Mapping[str, Tensor]
) -> Tensor:
    """``[y1 - y0, x1 - x0, 3]``: the rays of ``item`` (a ``Frames`` item) inside ``box`` rendered under
    ``cond``, rounded to 8 bits (as :func:`talker.evaluation.heldout.render_item` rounds whole frames)."""
    width = item["image"].shape[1]
    y0, y1, x0, x1 = box
    ys, xs = torch.meshgrid(torch.arange(y0, y1), torch.arange(x0, x1), indexing="ij")
    flat = (ys * width + xs).reshape(-1)  # Frames items list pixels row-major
    device = head.device
    batch = {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in item.items()}
    batch.update({k: item[k][flat].to(device) for k in RAY_KEYS if k in item})
    batch["cond"] = {k: v.to(device) for k, v in cond.items()}
    out = head.render_frame(batch)
    return torch.from_numpy(to_uint8(out.rgb.view(y1 - y0, x1 - x0, 3))).float() / 255.0


def paste(image: Tensor, patch: Tensor, box: tuple[int, int, int, int]) -> Tensor:
    """A copy of ``image`` with ``patch`` in ``box``."""
    y0, y1, x0, x1 = box
    out = image.clone()
    out[y0:y1, x0:x1] = patch
    return out


def under_other_condition(head: TalkingHead, frames: Frames, index: int, item: Mapping[str, Any], pred: Tensor) -> Tensor | None:
    """``pred`` (frame ``index``'s render) with its mouth box rendered under the paired frame's
    condition; None when the split has no other frame."""
    other = other_frame(index, len(frames))
    if other is None:
        return None
    box = mouth_box(item["lms"], *pred.shape[:2])
    return paste(pred, render_box(head, item, box, frames.conditions.of_split(frames.split, other)), box)


def clip_eye_ratios(split: Split) -> Tensor:
    """``[M]``: the eye ratio of every frame of the split's landmark track (the whole clip, training and
    held-out frames: ``Split.landmarks`` is indexed by ``aud_id``), as :func:`eye_ratio` measures it."""
    return eye_aspect_ratio(split.landmarks.float())


def other_eye_ratio(own: Tensor, ratios: Tensor) -> Tensor:
    """``[1]``: the eye ratio the eye condition gap renders a frame of eye ratio ``own`` under: the one of
    ``ratios`` farthest from it (the first on a tie). An open frame gets the clip's most closed eyes, a
    closed one the clip's widest-open: the largest change of eye state the clip shows the head. On a clip
    that never blinks it is ``own`` itself (or nearly), and the gap is 0 by construction:
    ``EvalFrame.eye_ratio_swap`` says how far it was."""
    return ratios[(ratios - own.reshape(())).abs().argmax()].reshape(1)


def with_other_eyes(head: TalkingHead, own: Mapping[str, Tensor], ratio: Tensor) -> dict[str, Tensor] | None:
    """``own`` with only its eye signal replaced by ``ratio`` (the condition key ``eye``, which every part
    reading the eye ratio honours: ``talker.fields.inputs.eye_ratio``); None when no part of the head
    reads one (``TalkingHead.drives_eyes``)."""
    if not getattr(head, "drives_eyes", False):
        return None
    return {**own, EYE: ratio.reshape(1)}


def under_other_eyes(
    head: TalkingHead, frames: Frames, index: int, item: Mapping[str, Any], pred: Tensor
) -> tuple[Tensor, float] | None:
    """``(pred with its eyes box rendered under its own condition with the eye ratio of
    :func:`other_eye_ratio`, |that ratio - the frame's own|)``; None for a head without an eye signal."""
    own = eye_ratio(item["cond"])
    ratio = other_eye_ratio(own, clip_eye_ratios(frames.split))
    cond = with_other_eyes(head, item["cond"], ratio)
    if cond is None:
        return None
    box = eyes_box(item["lms"], *pred.shape[:2])
    return paste(pred, render_box(head, item, box, cond), box), float((ratio - own).abs())


@torch.no_grad()
def mouth_frames(head: TalkingHead, frames: Frames, progress: bool = False) -> Iterator[EvalFrame]:
    """Held-out frames whose mouth boxes alone are rendered, with the frame's own condition (``pred``)
    and with the paired frame's (``pred_other_condition``), the rest being the ground truth: enough for
    ``ConditionGap`` at a few percent of the cost of whole frames."""
    was_training = head.training
    head.eval()
    try:
        for i in tqdm(range(len(frames)), desc="rendering held-out mouths", disable=not progress):
            item = frames[i]
            target = item["image"]
            box = mouth_box(item["lms"], *target.shape[:2])
            pred = paste(target, render_box(head, item, box, item["cond"]), box)
            yield EvalFrame(
                frame_id=item["img_id"], pred=pred, target=target, landmarks=item["lms"],
                time_index=int(frames.split.aud_ids[i]), pred_other_condition=under_other_condition(head, frames, i, item, pred),
            )
    finally:
        head.train(was_training)


def condition_gap(head: TalkingHead, frames: Frames, progress: bool = False) -> dict[str, float]:
    """Held-out mouth-box PSNR with each frame's own condition (``psnr_mouth``), with the paired
    frame's (``psnr_mouth_other``) and the gap (``cond_gap_mouth``), from the mouth boxes alone
    (:func:`mouth_frames`), scored by the evaluator's own metrics."""
    result = Evaluator([PSNR(), ConditionGap()]).evaluate(mouth_frames(head, frames, progress))
    if "cond_gap" in result.unavailable:
        raise ValueError(f"condition gap: {result.unavailable['cond_gap']}")
    return {key: result.summary[key] for key in ("psnr_mouth", "psnr_mouth_other", "cond_gap_mouth")}
