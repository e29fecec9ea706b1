"""The evaluator's condition gap: 0 for a head whose condition path is cut, positive for one whose
mouth follows its condition, and rendered only where a metric asks for it."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from talker.config import compose_config, instantiate
from talker.data.datamodule import Frames, TalkingHeadDataModule
from talker.data.landmarks import eyes_box, mouth_box
from talker.evaluation import clip_eye_ratios, condition_gap, other_eye_ratio, other_frame, render_eval_frames
from talker.fields import eye_ratio
from talker.head.model import TalkingHead
from talker.metrics import PSNR, ConditionGap, Evaluator, EyeConditionGap, MetricUnavailableWarning, psnr
from talker.reporting.tables import HEARING_THRESHOLD_DB

from ..conftest import TINY


def untrained_head(data_dir: Path, *overrides: str) -> tuple[TalkingHead, TalkingHeadDataModule]:
    """An untrained TINY head (seed 0) prepared on the training frames, and its data module set up
    for validation."""
    cfg = compose_config([*TINY, f"paths.data_dir={data_dir}", *overrides])
    datamodule = instantiate(cfg.data, "data")
    datamodule.prepare_data()
    datamodule.setup("validate")
    torch.manual_seed(0)
    head = instantiate(cfg.model, "model").head
    head.prepare(datamodule.train_conditions())
    return head, datamodule


def tiny_head(data_dir: Path, *overrides: str, scale: float = 0.5) -> tuple[TalkingHead, TalkingHeadDataModule]:
    """An untrained tiny head whose condition path is switched on: zero-initialised output layers and
    the positional grid given a trained magnitude, so that a condition that reaches the field moves
    the colour (as in tests/conditioning/test_contract.py); ``scale``: the strategy's perturbation."""
    head, datamodule = untrained_head(data_dir, *overrides)
    with torch.no_grad():
        for p in head.conditioning.parameters():
            p.add_(torch.randn_like(p) * scale)
        head.field.encoder.embeddings.normal_(0, 0.5)
    return head, datamodule


def scored(head: torch.nn.Module, frames: Frames):
    return Evaluator([PSNR(), ConditionGap()]).evaluate(render_eval_frames(head, frames, progress=False, other_condition=True))


def test_pairing_reverses_the_split_and_moves_the_middle_frame() -> None:
    assert [other_frame(i, 4) for i in range(4)] == [3, 2, 1, 0]
    assert [other_frame(i, 3) for i in range(3)] == [2, 2, 0]  # the middle one: (1 + 3 // 2) % 3
    assert other_frame(0, 1) is None


def test_a_head_with_its_condition_cut_scores_a_gap_of_exactly_zero(data_dir: Path) -> None:
    """``data.zero_condition=true``: every frame is rendered from the same (zero) condition, so the
    mouth box rendered again, alone, under another frame's condition is the very same pixels."""
    head, datamodule = tiny_head(data_dir, "data.zero_condition=true")
    result = scored(head, datamodule.eval_frames())
    assert result.summary["psnr_mouth"] < 40  # a real render, not the ground truth
    assert result.summary["psnr_mouth_other"] == result.summary["psnr_mouth"]
    assert result.summary["cond_gap_mouth"] == 0.0
    # The same head fed its frames' real conditions renders other mouths under other conditions.
    hearing, datamodule = tiny_head(data_dir)
    gaps = [row["cond_gap_mouth"] for row in scored(hearing, datamodule.eval_frames()).per_frame]
    assert max(abs(g) for g in gaps) > 0.01


class GroundTruthOfItsCondition(torch.nn.Module):
    """A head whose colour is decided by its condition alone: every ray shows the ground truth of the
    held-out frame whose condition (landmark window) it is given."""

    def __init__(self, frames: Frames) -> None:
        super().__init__()
        self.frames = frames
        self.register_buffer("anchor", torch.zeros(()))
        self.rendered_rays: list[int] = []

    @property
    def device(self) -> torch.device:
        return self.anchor.device

    def render_frame(self, frame: dict[str, Any]) -> SimpleNamespace:
        split = self.frames.split
        owner = next(
            k for k in range(len(split))
            if torch.equal(self.frames.conditions.of_split(split, k)["landmarks"], frame["cond"]["landmarks"])
        )
        pixels = frame["pixels"]
        self.rendered_rays.append(len(pixels))
        image = split.images[owner].float() / 255.0
        return SimpleNamespace(rgb=image.view(-1, 3)[pixels[:, 1] * split.width + pixels[:, 0]])


def test_a_head_whose_mouth_follows_its_condition_scores_the_hand_computed_gap(tiny_clip: Path) -> None:
    datamodule = TalkingHeadDataModule(root=str(tiny_clip))
    datamodule.setup("validate")
    frames = datamodule.eval_frames()
    n, split = len(frames), frames.split
    head = GroundTruthOfItsCondition(frames)
    frames_seen = list(render_eval_frames(head, frames, progress=False, other_condition=True))
    expected = []
    for i, frame in enumerate(frames_seen):
        y0, y1, x0, x1 = box = mouth_box(split.lms[i], split.height, split.width)
        truth, other = frame.target, split.images[other_frame(i, n)].float() / 255.0
        # Outside the mouth box the other-condition frame is the frame itself; inside, the other frame's pixels.
        outside = torch.ones(split.height, split.width, dtype=torch.bool)
        outside[y0:y1, x0:x1] = False
        assert torch.equal(frame.pred_other_condition[outside], frame.pred[outside])
        assert torch.equal(frame.pred_other_condition[y0:y1, x0:x1], other[y0:y1, x0:x1])
        expected.append(float(psnr(truth[y0:y1, x0:x1], truth[y0:y1, x0:x1]) - psnr(other[y0:y1, x0:x1], truth[y0:y1, x0:x1])))
        assert box[1] - box[0] < split.height  # a box, not the frame
    # Whole frames once, then the mouth box once more per frame: the extra cost is the mouth's rays.
    boxes = [mouth_box(split.lms[i], split.height, split.width) for i in range(n)]
    assert head.rendered_rays[1::2] == [(b[1] - b[0]) * (b[3] - b[2]) for b in boxes]
    result = Evaluator([PSNR(), ConditionGap()]).evaluate(iter(frames_seen))
    assert result.summary["cond_gap_mouth"] == pytest.approx(sum(expected) / n)
    assert result.summary["cond_gap_mouth"] > HEARING_THRESHOLD_DB
    # The mouth boxes alone (benchmarks/hearing_curve.py) give the same figures.
    alone = condition_gap(GroundTruthOfItsCondition(frames), frames)
    assert alone["cond_gap_mouth"] == pytest.approx(result.summary["cond_gap_mouth"])
    assert alone["psnr_mouth"] == pytest.approx(result.summary["psnr_mouth"])


def test_the_other_condition_is_rendered_only_when_a_metric_reads_it(tiny_clip: Path) -> None:
    datamodule = TalkingHeadDataModule(root=str(tiny_clip))
    datamodule.setup("validate")
    frames = datamodule.eval_frames()
    assert Evaluator({"psnr": PSNR(), "cond_gap": ConditionGap()}).needs_other_condition
    assert not Evaluator({"psnr": PSNR(), "cond_gap": None}).needs_other_condition  # ...metrics.cond_gap=null
    head = GroundTruthOfItsCondition(frames)
    assert all(f.pred_other_condition is None for f in render_eval_frames(head, frames, progress=False))
    assert len(head.rendered_rays) == len(frames)


# --- The eye condition gap: only the eye ratio swapped, in the eyes box -------------------------------


def shut_one_eye_pair(frames: Frames, index: int) -> None:
    """Close both eyes of held-out frame ``index`` in the split's landmark track (the tiny clip never
    blinks): its eye ratio drops to 0 while every other landmark stays."""
    track, time = frames.split.landmarks, int(frames.split.aud_ids[index])
    for upper, lower in ((37, 41), (38, 40), (43, 47), (44, 46)):
        track[time, upper, 1] = track[time, lower, 1]


class EyesFollowTheirRatio(GroundTruthOfItsCondition):
    """The ground truth of the frame its landmarks belong to, brightened by how far the eye signal it is
    given (``eye_ratio(cond)``) is from its landmarks' own: a head that uses its eye signal."""

    drives_eyes = True

    def render_frame(self, frame: dict[str, Any]) -> SimpleNamespace:
        out = super().render_frame(frame)
        cond = frame["cond"]
        own = eye_ratio({"landmarks": cond["landmarks"]})
        return SimpleNamespace(rgb=(out.rgb * 0.8 + 2 * (eye_ratio(cond) - own).abs()).clamp(0, 1))


class EyesIgnored(GroundTruthOfItsCondition):
    """Declares an eye signal but renders from its landmarks alone: the eye ratio changes nothing."""

    drives_eyes = True

    def render_frame(self, frame: dict[str, Any]) -> SimpleNamespace:
        return SimpleNamespace(rgb=super().render_frame(frame).rgb * 0.8)  # a render, not the ground truth


def eye_scored(head: torch.nn.Module, frames: Frames):
    return Evaluator([PSNR(), EyeConditionGap()]).evaluate(render_eval_frames(head, frames, progress=False, other_condition=True))


def test_the_eye_gap_renders_each_frame_with_the_clips_farthest_eye_ratio() -> None:
    """Open frames get the clip's most closed eyes, closed ones the widest-open, whatever the split."""
    ratios = torch.tensor([0.30, 0.00, 0.31, 0.15, 0.30])
    assert [float(other_eye_ratio(r, ratios)) for r in ratios] == pytest.approx([0.0, 0.31, 0.0, 0.31, 0.0])
    assert other_eye_ratio(torch.tensor([0.2]), torch.full((4,), 0.2)).item() == pytest.approx(0.2)  # never blinks


def test_the_eye_gap_swaps_only_the_eye_ratio_and_is_zero_for_a_head_that_ignores_it(tiny_clip: Path) -> None:
    datamodule = TalkingHeadDataModule(root=str(tiny_clip))
    datamodule.setup("validate")
    frames = datamodule.eval_frames()
    # The tiny clip never blinks: every frame would be rendered with its own eye ratio.
    open_ratio = float(clip_eye_ratios(frames.split).max())
    assert float(clip_eye_ratios(frames.split).min()) == pytest.approx(open_ratio)
    never = Evaluator([PSNR(), EyeConditionGap()]).evaluate(
        render_eval_frames(EyesFollowTheirRatio(frames), frames, progress=False, other_condition=True)
    )
    assert never.summary["eye_ratio_swap"] == pytest.approx(0.0, abs=1e-6)
    assert never.summary["cond_gap_eyes"] == pytest.approx(0.0, abs=1e-3)

    shut_one_eye_pair(frames, 0)  # held-out frame 0 blinks; its pair for the mouth gap (frame 2) does not
    ratios = [float(eye_ratio(frames.conditions.of_split(frames.split, k))) for k in range(len(frames))]
    assert ratios[0] == 0.0 and min(ratios[1:]) > 0.2

    ignored = eye_scored(EyesIgnored(frames), frames)
    assert ignored.summary["cond_gap_eyes"] == 0.0 and ignored.summary["psnr_eyes"] < 100

    head = EyesFollowTheirRatio(frames)
    seen = list(render_eval_frames(head, frames, progress=False, other_condition=True))
    result = Evaluator([PSNR(), EyeConditionGap()]).evaluate(iter(seen))
    # Every frame sees a change of eye state: the closed one is rendered open, the open ones closed
    # (frame 0's ratio), not with their mouth-gap partner's equal ratio.
    swaps = [row["eye_ratio_swap"] for row in result.per_frame]
    assert swaps[0] == pytest.approx(open_ratio) and swaps[1:] == pytest.approx([open_ratio] * (len(frames) - 1))
    assert all(row["cond_gap_eyes"] > 1.0 for row in result.per_frame)
    for i, frame in enumerate(seen):  # the other-eyes frame differs from the frame only in the eyes box
        y0, y1, x0, x1 = eyes_box(frames.split.lms[i], frames.split.height, frames.split.width)
        outside = torch.ones(frames.split.height, frames.split.width, dtype=torch.bool)
        outside[y0:y1, x0:x1] = False
        assert torch.equal(frame.pred_other_eyes[outside], frame.pred[outside])
    # The mouth gap keeps its pairing: the split reversed.
    assert other_frame(0, len(frames)) == len(frames) - 1


def test_a_head_without_an_eye_signal_reports_no_eye_gap_not_zero(tiny_clip: Path) -> None:
    datamodule = TalkingHeadDataModule(root=str(tiny_clip))
    datamodule.setup("validate")
    frames = datamodule.eval_frames()
    head = GroundTruthOfItsCondition(frames)  # declares no eye signal
    assert all(f.pred_other_eyes is None for f in render_eval_frames(head, frames, progress=False, other_condition=True))
    with pytest.warns(MetricUnavailableWarning, match="no eye signal"):
        result = eye_scored(head, frames)
    assert "cond_gap_eyes" not in result.summary and "cond_gap_eyes" in result.unavailable


def test_lokitalk_and_rad_nerf_heads_declare_an_eye_signal_and_r2talker_none(data_dir: Path) -> None:
    """The declaration comes from the parts (LokiTalk's strategy, RAD-NeRF's EyeBlink), not from the evaluator."""
    # A small perturbation: at 0.5 the deformation (|dx| up to 300) moves every point out of the volume,
    # and an empty eyes box renders the same under any eye ratio.
    loki, datamodule = tiny_head(data_dir, "conditioning=lokitalk", scale=0.05)
    assert loki.drives_eyes
    assert not tiny_head(data_dir)[0].drives_eyes
    blink, _ = tiny_head(data_dir, "+field.density_inputs=[{_target_: talker.fields.EyeBlink}]")
    assert blink.drives_eyes
    # LokiTalk's eye gap on a clip that blinks: a perturbed (untrained) head's eyes box moves with F_e alone.
    frames = datamodule.eval_frames()
    shut_one_eye_pair(frames, 0)
    gaps = [row["cond_gap_eyes"] for row in eye_scored(loki, frames).per_frame]
    assert all(g != 0.0 for g in gaps)  # every frame's eyes box is rendered with another eye state
