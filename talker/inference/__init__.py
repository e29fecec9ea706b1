"""Inference: driving a trained head with new audio (``python -m talker.drive`` and the cross-driven
evaluation use it)."""

from talker.inference.drive import (
    FPS,
    MotionStage,
    audio_extractor,
    draw_landmarks,
    drive,
    driven_frames,
    is_motion_run,
    pingpong,
    smooth_poses,
    write_video,
)

__all__ = [
    "FPS",
    "MotionStage",
    "audio_extractor",
    "draw_landmarks",
    "drive",
    "driven_frames",
    "is_motion_run",
    "pingpong",
    "smooth_poses",
    "write_video",
]
