"""One frame builder: every consumer of a frame's condition gets the same windows from it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from talker.config import compose_config, instantiate
from talker.data.frames import FrameConditions, TrackWindow, split_tracks
from talker.data.layout import load_split
from talker.evaluation.speed import frame_at_resolution


def test_windows_are_centred_and_clamped_at_the_clip_ends() -> None:
    track = torch.arange(6.0)
    assert [TrackWindow(5)(track, t).tolist() for t in (0, 3, 5)] == [
        [0, 0, 0, 1, 2], [1, 2, 3, 4, 5], [3, 4, 5, 5, 5]
    ]
    assert TrackWindow(8)(track, 2).tolist() == [0, 0, 0, 1, 2, 3, 4, 5]  # frames t-4 .. t+3


def test_keys_come_from_their_providers_and_missing_ones_are_named(tiny_clip: Path) -> None:
    split = load_split(tiny_clip, "train")
    conditions = FrameConditions(landmark_window=3, audio_window=4)
    cond = conditions.of_split(split, 2)
    assert cond["landmarks"].shape == (3, 68, 3) and cond["audio"].shape == (4, 16, 80)
    assert list(conditions.of_split(split, 2, keys=["landmarks"])) == ["landmarks"]
    with pytest.raises(KeyError, match="no condition provider for input 'phonemes'"):
        conditions.of_split(split, 2, keys=["phonemes"])
    with pytest.raises(KeyError, match="no audio track"):
        conditions({"landmarks": split.landmarks}, 0, keys=["audio"])
    assert set(split_tracks(split)) == {"landmarks", "audio", "pose"}
    # The pose is the frame's own (time = its aud_id), whatever the frame's position in the split: the
    # held-out frames come after the training ones in time (aud_ids 9.. at positions 0..).
    held_out = load_split(tiny_clip, "val")
    assert int(held_out.aud_ids[0]) > 0
    for part in (split, held_out):
        for i in (0, len(part) - 1):
            assert torch.equal(conditions.of_split(part, i)["pose"], part.poses[i][None])


def test_zero_condition_reaches_every_consumer(tiny_overrides: list[str]) -> None:
    """data.zero_condition=true zeroes training batches, evaluation frames, the occupancy sweep's
    conditions and the speed profile's frames alike (they all build conditions in one place)."""
    dm = instantiate(compose_config([*tiny_overrides, "data.zero_condition=true"]).data, "data")
    dm.prepare_data()
    dm.setup("fit")
    built = [
        dm.train_dataloader().batches.sample(0)["cond"],
        dm.eval_frames()[0]["cond"],
        dm.train_conditions()[0],
        frame_at_resolution(dm.val_split, 0, None, dm.conditions)["cond"],
    ]
    for cond in built:
        assert set(cond) == {"landmarks", "audio", "pose"} and not any(v.any() for v in cond.values())
    live = FrameConditions(dm.landmark_window).of_split(dm.train_split, 0)
    assert live["landmarks"].any()  # the same frame with a live condition is not all zeros
