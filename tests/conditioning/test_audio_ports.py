"""The audio paths of RAD-NeRF (audio_spatial) and ER-NeRF (region_attention) as their reference codes
have them (docs/audio_driven_baselines.md): regulariser form, feature standardisation, bias-free
ambient MLP, zero-padded windows, the attention net's own learning rate."""

from __future__ import annotations

from pathlib import Path

import hydra
import numpy as np
import pytest
import torch

from talker.conditioning import AudioCode, ray_sum_penalty
from talker.config import compose_config
from talker.data.frames import FrameConditions, TrackWindow
from talker.data.landmarks import landmark_extent, lower_face_box
from talker.data.layout import load_split
from talker.fit import train
from talker.inference.drive import driven_frames
from talker.runs import RunFolder

from ..conftest import TINY

NO_SCORING = ["callbacks.evaluation=null", "callbacks.projector=null", "callbacks.images=null"]


def test_ray_sum_penalty_against_a_hand_computation() -> None:
    """Unweighted sum per ray over the samples reached by >= 1e-4 of the light, exempt rays 0, / R."""
    values = torch.tensor([0.3, 0.7, 1.1, 2.0, 5.0, 0.4, 9.0])
    light = torch.tensor([1.0, 0.2, 1e-4, 0.9, 2e-5, 1.0, 1.0])  # 1e-4 counts, 2e-5 does not
    rays = torch.tensor([0, 0, 0, 1, 1, 2, 4])  # ray 3 has no sample; ray 4 is exempt
    exempt = torch.tensor([False, False, False, False, True])
    expected = ((0.3 + 0.7 + 1.1) + 2.0 + 0.4) / 5
    assert ray_sum_penalty(values, light, rays, 5, exempt).item() == pytest.approx(expected)
    grad = torch.zeros(7, requires_grad=True)
    ray_sum_penalty(values + grad, light, rays, 5, exempt).backward()
    assert grad.grad.tolist() == pytest.approx([0.2, 0.2, 0.2, 0.2, 0.0, 0.2, 0.0])  # the same per counted sample


def test_lower_face_is_nostrils_to_chin_and_landmark_extent_the_tight_box() -> None:
    lms = torch.zeros(68, 2)
    lms[:, 0] = torch.linspace(10.2, 50.9, 68)  # x
    lms[:, 1] = torch.linspace(20.0, 60.0, 68)  # y
    lms[31:36, 1] = torch.tensor([40.7, 41.0, 39.9, 42.0, 45.0])  # nostrils
    assert lower_face_box(lms, 100, 100) == (39, 60, 10, 50)  # rows from the highest nostril, truncated
    assert landmark_extent(lms, 100, 100) == (20, 60, 10, 50)
    assert lower_face_box(lms, 55, 45) == (39, 55, 10, 45)  # clipped to the image


def test_audio_windows_are_zero_padded_at_the_clip_ends_and_landmarks_clamped() -> None:
    audio = torch.arange(1.0, 7.0).view(6, 1, 1).expand(6, 2, 3)
    landmarks = torch.arange(1.0, 7.0).view(6, 1, 1).expand(6, 68, 3)
    cond = FrameConditions(landmark_window=5, audio_window=8)({"audio": audio, "landmarks": landmarks}, 1)
    assert cond["audio"][:, 0, 0].tolist() == [0, 0, 0, 1, 2, 3, 4, 5]  # frames t-4 .. t+3, none before 0
    assert cond["landmarks"][:, 0, 0].tolist() == [1, 1, 2, 3, 4]  # R2-Talker's windows (t-2 .. t+2): clamped
    end = FrameConditions(audio_window=8)({"audio": audio}, 5)["audio"][:, 0, 0]
    assert end.tolist() == [2, 3, 4, 5, 6, 0, 0, 0]
    assert TrackWindow(8, pad="zeros")(audio, 3)[:, 0, 0].tolist() == [0, 1, 2, 3, 4, 5, 6, 0]


def strategy(name: str, *overrides: str) -> AudioCode:
    cfg = compose_config([f"conditioning={name}", *overrides])
    built = hydra.utils.instantiate(cfg.conditioning)
    built.bind([16, 16], position_dim=12)
    return built


def test_ambient_mlp_has_no_biases_and_the_reference_sizes() -> None:
    spatial = strategy("audio_spatial")
    linears = [m for m in spatial.fusion.ambient_net.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 3 and all(layer.bias is None for layer in linears)
    assert spatial.audio_dim == 64 and spatial.fusion.grid.gridtype == "tiled"  # RAD-NeRF's
    assert strategy("region_attention").audio_dim == 32  # ER-NeRF's


@pytest.mark.parametrize(
    ("name", "lr_net", "attention_lr", "decay"), [("audio_spatial", 3e-3, 5 * 5e-4, 0.01), ("region_attention", 1e-3, 5e-3, 1e-4)]
)
def test_the_attention_net_trains_at_five_times_the_rate(name: str, lr_net: float, attention_lr: float, decay: float) -> None:
    built = strategy(name)
    groups = {g["name"]: g for g in built.param_groups(lr_net, 0.01, exclude=set())}
    attention = {id(p) for p in built.smoothing.parameters()}
    assert {id(p) for p in groups["attention"]["params"]} == attention
    assert groups["attention"]["lr"] == pytest.approx(attention_lr) and groups["attention"]["weight_decay"] == decay
    others = [id(p) for g in groups.values() if g["name"] != "attention" for p in g["params"]]
    assert not attention & set(others)


def test_system_rad_nerf_has_rad_nerfs_rates_in_the_optimiser() -> None:
    cfg = compose_config(["system=rad_nerf", *TINY])
    module = hydra.utils.instantiate(cfg.model)
    groups = {g["name"]: g for g in module.configure_optimizers()["optimizer"].param_groups}
    assert groups["net"]["lr"] == 5e-4 and groups["encoder"]["lr"] == 5e-3
    assert groups["conditioning"]["lr"] == 5e-4 and groups["attention"]["lr"] == pytest.approx(2.5e-3)
    assert all(g["weight_decay"] == 0 for g in groups.values())


def test_features_are_standardised_with_training_statistics(tiny_clip: Path) -> None:
    split = load_split(tiny_clip, "train")
    built = strategy("audio_spatial")
    conditions = [FrameConditions().of_split(split, i) for i in range(len(split))]
    built.prepare(conditions)
    own = split.audio[split.aud_ids].reshape(-1, split.audio.shape[-1])  # each training frame's window
    torch.testing.assert_close(built.feature_mean, own.mean(0))
    torch.testing.assert_close(built.feature_std, own.std(0, unbiased=False).clamp_min(1e-4))
    window = conditions[0]["audio"]
    standard = built.standardise(window)
    assert standard[:4].abs().sum() == 0  # the zero padding before the clip stays zero
    torch.testing.assert_close(standard[4:], (window[4:] - built.feature_mean) / built.feature_std)
    before = built.feature_mean.clone()
    built.prepare([{"audio": c["audio"] + 5} for c in conditions])  # prepared once: never recomputed
    torch.testing.assert_close(built.feature_mean, before)


def test_standardisation_survives_the_checkpoint_and_drives_new_audio(
    data_dir: Path, tiny_clip: Path, tiny_speech: dict[str, Path], tmp_path: Path
) -> None:
    """The statistics a run saved are the training split's, come back with the checkpoint and are what
    driving with new audio standardises by (never the new audio's own)."""
    run = train(compose_config([
        "experiment=quickstart", *TINY, *NO_SCORING, "conditioning=audio_spatial",
        f"paths.data_dir={data_dir}", f"run_dir={tmp_path / 'head'}",
    ]))
    folder = RunFolder(run)
    head = folder.load_module(folder.config(), device="cpu").head
    split = load_split(tiny_clip, "train")
    own = split.audio[split.aud_ids].reshape(-1, split.audio.shape[-1])
    strategy_ = head.conditioning
    assert bool(strategy_.prepared)
    torch.testing.assert_close(strategy_.feature_mean, own.mean(0))

    from talker.audio import load_audio

    speech = load_audio(next(iter(tiny_speech.values())))[::-1].copy()
    frames = lambda: np.stack(list(driven_frames(head, split, None, speech, 3)))
    saved = frames()
    torch.testing.assert_close(strategy_.feature_mean, own.mean(0))  # driving did not recompute them
    with torch.no_grad():
        strategy_.feature_mean.add_(3.0)
    assert np.abs(frames().astype(int) - saved.astype(int)).max() > 0  # ... and it reads them
