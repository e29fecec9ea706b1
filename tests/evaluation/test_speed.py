"""The speed profile of a head: frames at a resolution, the same rays as evaluation at the dataset's."""

from pathlib import Path

import torch

from talker.data.datamodule import Frames
from talker.data.frames import FrameConditions
from talker.data.layout import load_split
from talker.evaluation.speed import frame_at_resolution


def test_frames_at_the_dataset_resolution_are_the_evaluation_rays(tiny_clip: Path) -> None:
    split = load_split(tiny_clip, "val")
    native = frame_at_resolution(split, 0, None, FrameConditions())
    reference = Frames(split, FrameConditions())[0]
    torch.testing.assert_close(native["rays_d"], reference["rays_d"])
    torch.testing.assert_close(native["background"], reference["background"], atol=1e-6, rtol=0)
    double = frame_at_resolution(split, 0, 2 * split.height, FrameConditions())
    assert double["shape"] == (64, 64) and double["rays_d"].shape == (64 * 64, 3)
    # The centre ray is unchanged by the scaled intrinsics.
    centre = lambda f, n: f["rays_d"].view(n, n, 3)[n // 2 - 1 : n // 2 + 1, n // 2 - 1 : n // 2 + 1].mean((0, 1))  # noqa: E731
    torch.testing.assert_close(centre(double, 64), centre(native, 32), atol=1e-3, rtol=0)
