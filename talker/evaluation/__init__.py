"""Evaluation as a library: the held-out scores of a trained head (with how much its condition moves
its mouth), the same scores of a run folder again, externally rendered frames, cross-driven videos
and the speed profile. Callbacks (``talker.callbacks``) and the CLI (``python -m talker.evaluate``)
are adapters over it."""

from talker.evaluation.condition_gap import (
    clip_eye_ratios,
    condition_gap,
    mouth_frames,
    other_eye_ratio,
    other_frame,
    render_box,
    under_other_condition,
    under_other_eyes,
    with_other_eyes,
)
from talker.evaluation.cross_driven import drive_and_score
from talker.evaluation.deformation import composited_norms, deformation_maps, heat_map_image
from talker.evaluation.external import evaluate_frames
from talker.evaluation.heldout import (
    HeldoutResult,
    evaluate_heldout,
    evaluate_run,
    render_eval_frames,
    render_item,
)
from talker.evaluation.scoring import dataset_context, mouth_strip, mouth_tiles, score_frames
from talker.evaluation.speed import frame_at_resolution, profile_head, write_speed_profile

__all__ = [
    "HeldoutResult",
    "clip_eye_ratios",
    "composited_norms",
    "condition_gap",
    "dataset_context",
    "deformation_maps",
    "drive_and_score",
    "evaluate_frames",
    "evaluate_heldout",
    "evaluate_run",
    "frame_at_resolution",
    "heat_map_image",
    "mouth_frames",
    "mouth_strip",
    "mouth_tiles",
    "other_eye_ratio",
    "other_frame",
    "profile_head",
    "render_box",
    "render_eval_frames",
    "render_item",
    "score_frames",
    "under_other_condition",
    "under_other_eyes",
    "with_other_eyes",
    "write_speed_profile",
]
