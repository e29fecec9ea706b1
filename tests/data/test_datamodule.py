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


def test_a_frame_patch_lies_anywhere_in_the_image_and_lips_patches_draw_as_before(tiny_overrides: list[str]) -> None:
    """``data.patch_region=frame`` (LokiTalk's LPIPS on the image): the same square, placed uniformly in
    the frame; ``lips`` draws the patches it always drew; another value fails naming the key."""
    import pytest

    dm = datamodule([*tiny_overrides, "data.lip_patch=8", "data.patch_region=frame"])
    split, batches = dm.train_split, dm.train_dataloader().batches
    gen = torch.Generator().manual_seed(0)
    corners = []
    for _ in range(200):
        patch = batches.sample(2, gen)["patch"]
        xs, ys = patch["pixels"][:, 0], patch["pixels"][:, 1]
        assert xs.max() - xs.min() == 7 and ys.max() - ys.min() == 7 and xs.min() >= 0 and ys.min() >= 0
        assert xs.max() < split.width and ys.max() < split.height
        flat = patch["pixels"][:, 1] * split.width + patch["pixels"][:, 0]
        torch.testing.assert_close(patch["rgb"], split.images[2].view(-1, 3)[flat].float() / 255)
        corners.append((int(xs.min()), int(ys.min())))
    # Every corner of the 25 x 25 possible ones is as likely: the draws reach the image's four edges.
    x0s, y0s = zip(*corners)
    assert (min(x0s), max(x0s), min(y0s), max(y0s)) == (0, split.width - 8, 0, split.height - 8)
    mouth = split.lms[2, 48:68].mean(0)
    assert any(abs(x + 4 - mouth[0]) > 8 or abs(y + 4 - mouth[1]) > 8 for x, y in corners)  # not tied to the lips

    lips = datamodule([*tiny_overrides, "data.lip_patch=8"]).train_dataloader().batches
    default = datamodule([*tiny_overrides, "data.lip_patch=8", "data.patch_region=lips"]).train_dataloader().batches
    a, b = (d.sample(2, torch.Generator().manual_seed(1))["patch"]["pixels"] for d in (lips, default))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="data.patch_region='face': must be one of lips, frame"):
        datamodule([*tiny_overrides, "data.patch_region=face"]).train_dataloader()


def test_ray_shares_land_in_their_boxes(tiny_overrides: list[str]) -> None:
    dm = datamodule([*tiny_overrides, "data.num_rays=100", "data.face_fraction=0.3", "data.mouth_fraction=0.5"])
    batches = dm.train_dataloader().batches
    pixels = batches.sample(1, torch.Generator().manual_seed(0))["pixels"]
    for box, rays in ((batches.face_boxes[1], pixels[:30]), (batches.mouth_boxes[1], pixels[30:80])):
        y0, y1, x0, x1 = box
        assert ((rays[:, 0] >= x0) & (rays[:, 0] < x1) & (rays[:, 1] >= y0) & (rays[:, 1] < y1)).all()
    batch = batches.sample(1, torch.Generator().manual_seed(0))
    assert batch["face"][:30].all()  # the face share, flagged for the ambient regulariser
    y0, y1, x0, x1 = batches.face_boxes[1]
    outside = (pixels[:, 0] < x0) | (pixels[:, 0] >= x1) | (pixels[:, 1] < y0) | (pixels[:, 1] >= y1)
    assert torch.equal(batch["face"], ~outside) and outside.any()
    mouth = dm.train_split.lms[1, 48:68]
    y0, y1, x0, x1 = batches.mouth_boxes[1]
    assert x0 <= mouth[:, 0].min() and mouth[:, 0].max() < x1 and y0 <= mouth[:, 1].min() and mouth[:, 1].max() < y1
    assert (y1 - y0) * (x1 - x0) < dm.train_split.height * dm.train_split.width / 4


def test_ray_shares_must_fit_the_batch(tiny_overrides: list[str]) -> None:
    """Checked when the config is composed (talker.config_checks.SHARES), before any data is read."""
    from talker.config import ConfigError

    with __import__("pytest").raises(ConfigError, match=r"^data.face_fraction=0.6 \+ data.mouth_fraction=0.5 = 1.1: "):
        datamodule([*tiny_overrides, "data.face_fraction=0.6", "data.mouth_fraction=0.5"])


def test_eye_rays_land_in_the_lids_strip(tiny_overrides: list[str]) -> None:
    dm = datamodule([*tiny_overrides, "data.num_rays=100", "data.face_fraction=0.3", "data.mouth_fraction=0.2", "data.eyes_fraction=0.4"])
    batches = dm.train_dataloader().batches
    batch = batches.sample(1, torch.Generator().manual_seed(0))
    assert batch["eye_strip"][50:90].all()  # after the face's 30 and the mouth's 20 rays
    y0, y1, x0, x1 = batches.eye_boxes[1]
    eyes = dm.train_split.lms[1, 36:48]
    assert x0 <= eyes[:, 0].min() and eyes[:, 0].max() < x1 and y0 <= eyes[:, 1].min() and eyes[:, 1].max() < y1
    ey0, ey1, ex0, ex1 = batches.region_boxes["eyes"][1]
    assert (y1 - y0) * (x1 - x0) < (ey1 - ey0) * (ex1 - ex0) / 2  # the lids, not the eyes box's upper face


def test_no_eye_rays_draws_the_rays_drawn_before_the_option(tiny_overrides: list[str]) -> None:
    """``eyes_fraction=0`` draws nothing from the generator: the same rays as a run made without it."""
    from talker.data.datamodule import _pixels_in

    batches = datamodule([*tiny_overrides, "data.num_rays=100", "data.face_fraction=0.3", "data.mouth_fraction=0.5"]).ray_batches()
    generator = torch.Generator().manual_seed(7)
    face, mouth = _pixels_in(batches.face_boxes[2], 30, generator), _pixels_in(batches.mouth_boxes[2], 50, generator)
    anywhere = torch.randint(0, 32 * 32, (20,), generator=generator)
    before = torch.cat([face, mouth, torch.stack([anywhere % 32, anywhere // 32], dim=-1)])
    assert torch.equal(batches.sample(2, torch.Generator().manual_seed(7))["pixels"], before)


class _Blinking:
    """A stand-in for RayBatches with frames 3 and 7 of 20 blinking."""

    def __len__(self) -> int:
        return 20

    def blinks(self) -> torch.Tensor:
        return torch.isin(torch.arange(20), torch.tensor([3, 7]))


def test_blink_share_is_the_share_of_steps_on_blinking_frames() -> None:
    from talker.data.datamodule import StepLoader

    loader = StepLoader(_Blinking(), seed=1, blink_share=0.3)  # type: ignore[arg-type]
    frames = [f for epoch in range(100) for f in loader.frame_order(torch.Generator().manual_seed(epoch))]
    share = sum(f in (3, 7) for f in frames) / len(frames)
    assert abs(share - 0.3) < 0.03, share  # 2000 draws; uniform would give 0.1
    assert {3, 7} <= set(frames) and len(set(frames)) == 20
    plain = StepLoader(_Blinking(), seed=1)  # type: ignore[arg-type]
    assert plain.frame_order(torch.Generator().manual_seed(5)) == torch.randperm(20, generator=torch.Generator().manual_seed(5)).tolist()
    with __import__("pytest").raises(ValueError, match=r"data.blink_share=1.0 must be in \[0, 1\)"):
        StepLoader(_Blinking(), blink_share=1.0)  # type: ignore[arg-type]
