"""LMD: the distance itself, the MediaPipe -> 68-point mapping (against exact synthetic landmarks), unavailability."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from talker.data.landmarks import MOUTH
from talker.metrics import LMD, EvalContext, EvalFrame, Evaluator, MetricUnavailableWarning
from talker.metrics.detector import MESH_TO_68
from talker.metrics.lmd import eye_distance, mouth_distance

from ..conftest import SHARED

TASK = SHARED / "models" / "face_landmarker.task" if SHARED else None
needs_landmarker = pytest.mark.skipif(
    TASK is None or not TASK.is_file() or not __import__("importlib").util.find_spec("mediapipe"),
    reason="needs mediapipe and shared/models/face_landmarker.task",
)


def test_mouth_distance_ignores_translation_and_measures_shape() -> None:
    gen = torch.Generator().manual_seed(0)
    a = torch.rand(68, 2, generator=gen, dtype=torch.float64) * 50
    assert mouth_distance(a, a + torch.tensor([7.0, -3.0])) == pytest.approx(0.0, abs=1e-9)
    b = a.clone()
    centre = a[MOUTH].mean(0)
    b[MOUTH] = centre + 1.5 * (a[MOUTH] - centre)  # mouth 50% larger about its centre
    expected = 0.5 * (a[MOUTH] - centre).norm(dim=-1).mean().item()
    assert mouth_distance(b, a) == pytest.approx(expected, rel=1e-9)
    b[:17] += 10  # the jaw does not count
    assert mouth_distance(b, a) == pytest.approx(expected, rel=1e-9)


def test_eye_distance_is_lmd_over_points_36_to_47_by_hand() -> None:
    """LMD-E against a hand computation on fixed landmarks: the 12 eye points, each set centred on its own mean."""
    a = torch.zeros(68, 2, dtype=torch.float64)
    b = torch.zeros(68, 2, dtype=torch.float64)
    a[36:48, 0] = torch.arange(12.0)  # eye points on a line, x = 0..11
    b[36:48, 0] = torch.arange(12.0) * 2 + 5  # twice as spread and shifted: centred, point k is off by k - 5.5
    expected = sum(abs(k - 5.5) for k in range(12)) / 12  # = 3.0
    assert expected == 3.0
    assert eye_distance(b, a) == pytest.approx(expected, rel=1e-12)
    assert mouth_distance(b, a) == 0.0  # the mouth did not move


@pytest.mark.parametrize("point, counts", [(35, False), (36, True), (41, True), (42, True), (47, True), (48, False)])
def test_eye_distance_reads_exactly_points_36_to_47(point: int, counts: bool) -> None:
    """One point moved: the eye distance changes for 36..47 and not for the nose (35) or the mouth (48)."""
    a = torch.rand(68, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 50
    b = a.clone()
    b[point] += torch.tensor([6.0, -2.0])
    assert (eye_distance(b, a) > 0.1) == counts


def test_lmd_e_comes_from_the_same_detections_and_frames_as_lmd(monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the metric: lmd_e is written next to lmd, over the frames where both faces were found."""
    shapes = {}
    truth = torch.rand(68, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 30
    eyes_off = truth.clone()
    eyes_off[36:48] *= 1.2
    mouth_off = truth.clone()
    mouth_off[48:68] *= 1.2
    images = [torch.full((8, 8, 3), float(v)) for v in range(5)]
    # image 0: ground truth; 1: eyes wrong; 2: mouth wrong; 3: no face (its frame is skipped by both)
    shapes = {id(images[0]): truth, id(images[1]): eyes_off, id(images[2]): mouth_off, id(images[3]): None}
    metric = LMD("unused.task")
    monkeypatch.setattr(metric.detector, "prepare", lambda: None)
    monkeypatch.setattr(metric.detector, "landmarks68", lambda image: shapes[id(image)])
    frames = [EvalFrame(0, images[1], images[0]), EvalFrame(1, images[2], images[0]), EvalFrame(2, images[3], images[0])]
    result = Evaluator([metric]).evaluate(frames)
    e1, m2 = eye_distance(eyes_off, truth), mouth_distance(mouth_off, truth)
    assert e1 > 0 and m2 > 0
    assert result.summary["lmd_e"] == pytest.approx(e1 / 2)  # frames 0 and 1; frame 2 has no face
    assert result.summary["lmd"] == pytest.approx(m2 / 2)
    assert result.summary["lmd_detected"] == pytest.approx(2 / 3)
    assert [set(row) - {"frame_id"} for row in result.per_frame] == [{"lmd", "lmd_e"}, {"lmd", "lmd_e"}, set()]


def test_mesh_mapping_covers_the_68_point_scheme_once() -> None:
    assert len(MESH_TO_68) == 68 and len(set(MESH_TO_68)) == 68
    assert all(0 <= i < 468 for i in MESH_TO_68)  # face mesh vertices, not iris points


@needs_landmarker
def test_detected_mouth_agrees_with_exact_synthetic_landmarks(data_dir: Path) -> None:
    from talker.data.layout import load_split
    from talker.data.synthetic import SyntheticClip

    split = load_split(SyntheticClip(num_frames=6, resolution=128, val_fraction=0.5).ensure(data_dir), "val")
    frames = [
        EvalFrame(int(split.img_ids[i]), split.images[i].float() / 255, split.images[i].float() / 255, split.lms[i], int(split.aud_ids[i]))
        for i in range(len(split))
    ]
    result = Evaluator([LMD(TASK)]).evaluate(frames, EvalContext(landmarks_exact=True))
    assert result.summary["lmd_detected"] == 1.0
    assert result.summary["lmd"] == pytest.approx(0.0, abs=1e-9)  # same image, same detector
    # MediaPipe's mouth vs the generator's exact one: about 1 px at 128 px (a wrong mapping: > 5 px).
    assert 0.0 < result.summary["lmd_gt"] < 2.0


@needs_landmarker
def test_lmd_on_real_frames_separates_mouth_shapes_from_head_shifts() -> None:
    from talker.utils.media import read_video

    video, _ = read_video(SHARED / "data" / "video" / "May_5s.mp4")
    to = lambda x: torch.from_numpy(np.ascontiguousarray(x)).float() / 255  # noqa: E731
    first = to(video[0])
    shifted = torch.roll(first, shifts=(6, -4), dims=(0, 1))  # the same face, moved
    later = [to(video[k]) for k in range(10, 125, 23)]  # other frames: other mouth shapes
    metric = LMD(TASK)
    metric.prepare(EvalContext())
    same = metric.update(EvalFrame(0, shifted, first))["lmd"]
    other = [metric.update(EvalFrame(k, frame, first))["lmd"] for k, frame in enumerate(later)]
    assert same < 1.0  # pixels at 512 x 512 (measured: 0.52)
    assert max(other) > 2 * same


def test_unavailable_without_the_bundle_or_mediapipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image = torch.zeros(16, 16, 3)
    missing = tmp_path / "face_landmarker.task"
    with pytest.warns(MetricUnavailableWarning, match="face_landmarker.task"):
        result = Evaluator([LMD(missing)]).evaluate([EvalFrame(0, image, image)])
    assert str(missing) in result.unavailable["lmd"] and "lmd" not in result.summary

    missing.write_bytes(b"not a bundle")
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # as if it were not installed
    with pytest.warns(MetricUnavailableWarning):
        result = Evaluator([LMD(missing)]).evaluate([EvalFrame(0, image, image)])
    assert "mediapipe does not import" in result.unavailable["lmd"]
