import torch

from talker.config import compose_config, instantiate


def datamodule(overrides: list[str]):
    dm = instantiate(compose_config(overrides).data, "data")
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_conditions_follow_the_frames(tiny_overrides: list[str]) -> None:
    dm = datamodule(tiny_overrides)
    batches = dm.train_dataloader().batches
    a, b = batches.sample(0)["cond"]["landmarks"], batches.sample(5)["cond"]["landmarks"]
    assert a.shape == (5, 68, 3) and a.abs().sum() > 0 and not torch.equal(a, b)


def test_zero_condition_withholds_the_driving_signal(tiny_overrides: list[str]) -> None:
    dm = datamodule([*tiny_overrides, "data.zero_condition=true"])
    conditions = [
        dm.train_dataloader().batches.sample(3)["cond"],
        dm.eval_frames()[0]["cond"],
        *dm.train_conditions(),
    ]
    for cond in conditions:
        assert cond["landmarks"].shape == (5, 68, 3) and not cond["landmarks"].any()


def test_audio_windows_follow_the_frames(tiny_overrides: list[str]) -> None:
    dm = datamodule(tiny_overrides)
    split = dm.train_split
    mel = torch.from_numpy(__import__("numpy").load(split.root / "aud_mel.npy")).float()
    audio = dm.train_dataloader().batches.sample(4)["cond"]["audio"]
    centre = int(split.aud_ids[4])
    ids = (torch.arange(8) - 4 + centre).clamp(0, mel.shape[0] - 1)
    torch.testing.assert_close(audio, mel[ids])  # frames i-4 .. i+3, clamped at the clip's ends


def test_lip_patch_is_a_square_around_the_mouth(tiny_overrides: list[str]) -> None:
    dm = datamodule([*tiny_overrides, "data.lip_patch=16"])
    split, batches = dm.train_split, dm.train_dataloader().batches
    batch = batches.sample(2, torch.Generator().manual_seed(0))
    patch = batch["patch"]
    assert patch["rays_o"].shape == (256, 3) and patch["rgb"].shape == (256, 3) and patch["bc"].shape == (256, 3)
    xs, ys = patch["pixels"][:, 0], patch["pixels"][:, 1]
    assert xs.max() - xs.min() == 15 and ys.max() - ys.min() == 15  # 16 x 16, row-major
    assert xs.min() >= 0 and ys.min() >= 0 and xs.max() < split.width and ys.max() < split.height
    mouth = split.lms[2, 48:68].mean(0)
    assert xs.min() - 1 <= mouth[0] <= xs.max() + 1 and ys.min() - 1 <= mouth[1] <= ys.max() + 1
    flat = patch["pixels"][:, 1] * split.width + patch["pixels"][:, 0]
    torch.testing.assert_close(patch["rgb"], split.images[2].view(-1, 3)[flat].float() / 255)
