"""Temporal stability metrics on constructed videos whose answers are known: still videos score 0, a
known sinusoidal shake scores the expected acceleration, a flickering background is detected, and a
neck that slides against the head raises the seam while a rigid move does not."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from talker.data.landmarks import MOUTH
from talker.metrics import (
    EvalContext,
    EvalFrame,
    Evaluator,
    Flicker,
    LandmarkJitter,
    MetricUnavailableWarning,
    NeckSeam,
)
from talker.metrics.temporal import acceleration_magnitude, stability_regions

from ..conftest import SHARED

TASK = SHARED / "models" / "face_landmarker.task" if SHARED else None
needs_landmarker = pytest.mark.skipif(
    TASK is None or not TASK.is_file() or not __import__("importlib").util.find_spec("mediapipe"),
    reason="needs mediapipe and shared/models/face_landmarker.task",
)
SIZE = 96


def face(cx: float = 48.0, chin: float = 52.0, width: float = 30.0, height: float = 26.0) -> torch.Tensor:
    """A plausible 68-point layout: jaw on a lower half-ellipse ending at the chin (point 8), brows
    ``height`` above the chin, eyes, nose and a mouth in between."""
    points = np.zeros((68, 2))
    angles = np.linspace(np.pi, 0, 17)
    points[:17] = np.stack([cx + width / 2 * np.cos(angles), chin - 0.6 * height + 0.6 * height * np.sin(angles)], 1)
    points[17:27] = np.stack([np.linspace(cx - 0.4 * width, cx + 0.4 * width, 10), np.full(10, chin - height)], 1)
    points[27:36] = np.stack([np.full(9, cx), np.linspace(chin - 0.8 * height, chin - 0.45 * height, 9)], 1)
    points[36:48] = np.stack([np.tile(np.linspace(-0.3, -0.1, 6), 2) * width + cx + np.repeat([0, 0.4 * width], 6),
                              np.full(12, chin - 0.8 * height)], 1)
    mouth = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    points[48:68] = np.stack([cx + 0.2 * width * np.cos(mouth), chin - 0.3 * height + 0.08 * height * np.sin(mouth)], 1)
    return torch.from_numpy(points).float()


def still_scene(seed: int = 0) -> torch.Tensor:
    """A textured ``[SIZE, SIZE, 3]`` image (every region has structure)."""
    return torch.rand(SIZE, SIZE, 3, generator=torch.Generator().manual_seed(seed))


def frames_of(preds, targets=None, landmarks=None, times=None) -> list[EvalFrame]:
    n = len(preds)
    targets = targets or [None] * n
    landmarks = landmarks or [face()] * n
    times = times or list(range(n))
    return [EvalFrame(k, p, t, lm, ti) for k, (p, t, lm, ti) in enumerate(zip(preds, targets, landmarks, times))]


def test_regions_are_where_the_docs_say() -> None:
    regions = stability_regions(face(), SIZE, SIZE)
    assert not regions.background[30, 48]  # the face
    assert regions.background[10, 2] and regions.background[40, 93]  # beside the head, above the chin
    assert not regions.background[60, 2]  # below the chin: shoulders
    assert regions.torso[80:, :].all() and not regions.torso[:60].any()  # from chin + 0.6 h = 67.6 down
    above, below = regions.seam_above, regions.seam_below
    assert above[:2] == (47, 52) and below[:2] == (55, 60)  # chin 52, h 26: [46.8, 52) and [54.6, 59.8)
    assert above[2:] == below[2:] == (36, 60)  # chin x 48 +- 0.4 * 30


def test_still_video_scores_zero_everywhere() -> None:
    image = still_scene()
    result = Evaluator([Flicker(), NeckSeam()]).evaluate(frames_of([image] * 5, [image] * 5))
    assert result.summary == {"flicker_bg": 0.0, "flicker_torso": 0.0, "flicker_bg_ref": 0.0, "flicker_torso_ref": 0.0, "seam": 0.0, "seam_ref": 0.0}


def test_flickering_background_is_detected_against_a_still_ground_truth() -> None:
    base = still_scene() * 0.8
    background = stability_regions(face(), SIZE, SIZE).background
    preds = []
    for k in range(6):
        frame = base.clone()
        frame[background] += (10 / 255) * (k % 2)  # the background brightens by 10 levels every other frame
        preds.append(frame)
    result = Evaluator([Flicker()]).evaluate(frames_of(preds, [base] * 6))
    assert result.summary["flicker_bg"] == pytest.approx(10.0, abs=1e-6)
    assert result.summary["flicker_bg_ref"] == 0.0 and result.summary["flicker_torso"] == 0.0
    assert [row.get("flicker_bg") for row in result.per_frame] == [None] + [pytest.approx(10.0, abs=1e-6)] * 5


def test_pairs_across_a_gap_in_time_do_not_count() -> None:
    a, b = still_scene(0), still_scene(1)
    result = Evaluator([Flicker()]).evaluate(frames_of([a, a, b, b], times=[0, 1, 5, 6]))
    assert result.summary["flicker_bg"] == 0.0  # the a -> b change happens across the gap


def test_seam_sees_a_neck_sliding_under_the_head_but_not_a_rigid_move() -> None:
    base = still_scene()
    regions = stability_regions(face(), SIZE, SIZE)
    y0, y1, x0, x1 = regions.seam_below
    # The neck band alternates between two values (+20 levels): the torso disagrees with the head.
    flashing = []
    for k in range(5):
        frame = base.clone()
        frame[y0:y1, x0:x1] = 0.3 + (20 / 255) * (k % 2)
        flashing.append(frame)
    assert Evaluator([NeckSeam()]).evaluate(frames_of(flashing)).summary["seam"] == pytest.approx(20.0, abs=1e-5)
    # Head and torso shift together by whole pixels, the landmarks with them: nothing changes at the seam.
    moved = [torch.roll(base, shifts=(dy, dx), dims=(0, 1)) for dy, dx in [(0, 0), (1, 2), (2, 3), (1, 1)]]
    lms = [face() + torch.tensor([float(dx), float(dy)]) for dy, dx in [(0, 0), (1, 2), (2, 3), (1, 1)]]
    assert Evaluator([NeckSeam()]).evaluate(frames_of(moved, landmarks=lms)).summary["seam"] == pytest.approx(0.0, abs=1e-9)
    # The neck (torso side) shifts 3 px sideways while the head and its landmarks stay: the seam sees it.
    sliding = [base.clone() for _ in range(4)]
    for k, frame in enumerate(sliding):
        frame[y0:y1] = torch.roll(base, shifts=3 * (k % 2), dims=1)[y0:y1]
    result = Evaluator([NeckSeam()]).evaluate(frames_of(sliding, [base] * 4))
    assert result.summary["seam"] > 1.0 and result.summary["seam_ref"] == 0.0


def shake_acceleration(amplitude: float, frequency: float, fps: float, middle: np.ndarray) -> float:
    """Mean |x(t+1) - 2 x(t) + x(t-1)| of x = A sin(w t), w = 2 pi f / fps, over the middle frames t:
    the second difference is -4 sin^2(w / 2) x(t), so it is 4 A sin^2(w / 2) mean |sin(w t)|."""
    w = 2 * np.pi * frequency / fps
    return 4 * amplitude * np.sin(w / 2) ** 2 * np.abs(np.sin(w * middle)).mean()


def test_acceleration_of_a_sinusoidal_shake_matches_the_closed_form() -> None:
    for fps, frequency, amplitude, seconds in [(25.0, 5.0, 2.0, 10), (25.0, 1.3, 3.0, 20)]:
        t = np.arange(int(seconds * fps))
        points = np.zeros((len(t), 68, 2))
        points[..., 0] = (amplitude * np.sin(2 * np.pi * frequency * t / fps))[:, None]
        measured = np.mean([acceleration_magnitude(points[k - 1 : k + 2]).mean() for k in range(1, len(t) - 1)])
        assert measured == pytest.approx(shake_acceleration(amplitude, frequency, fps, t[1:-1]), rel=1e-9)
    # Not locked to the frame rate and over many periods, mean |sin| -> 2 / pi: (8 / pi) A sin^2(pi f / fps).
    assert measured == pytest.approx(8 / np.pi * amplitude * np.sin(np.pi * frequency / fps) ** 2, rel=0.01)


class _Known:
    """A stand-in detector: the landmarks each constructed image was drawn with."""

    def __init__(self, truth: dict[int, torch.Tensor]) -> None:
        self.truth = truth

    def prepare(self) -> None:
        pass

    def forget(self) -> None:
        pass

    def landmarks68(self, image: torch.Tensor) -> torch.Tensor | None:
        return self.truth.get(id(image))


def test_jitter_of_a_known_shake_against_a_still_ground_truth() -> None:
    fps, frequency, amplitude = 25.0, 5.0, 2.0
    still = still_scene()
    preds, truth = [], {}
    for k in range(52):  # 50 triples: 10 whole periods
        image = still.clone()
        truth[id(image)] = face() + torch.tensor([amplitude * math.sin(2 * math.pi * frequency * k / fps), 0.0])
        preds.append(image)
    truth[id(still)] = face()
    metric = LandmarkJitter("unused.task")
    metric.detector = _Known(truth)
    result = Evaluator([metric]).evaluate(frames_of(preds, [still] * 52))
    expected = shake_acceleration(amplitude, frequency, fps, np.arange(1, 51))  # 1.7044 px / frame^2
    assert result.summary["jitter_face"] == pytest.approx(expected, rel=1e-6)
    assert result.summary["jitter_mouth"] == pytest.approx(expected, rel=1e-6)  # every point moves alike
    assert result.summary["jitter_face_ref"] == 0.0 and result.summary["jitter_detected"] == 1.0


@needs_landmarker
def test_mediapipe_jitter_on_a_real_face_still_and_shaken() -> None:
    from talker.utils.media import read_video

    video, _ = read_video(SHARED / "data" / "video" / "May_5s.mp4")
    first = torch.from_numpy(np.ascontiguousarray(video[0][::2, ::2])).float() / 255  # 256 x 256
    shifts = [round(3 * math.sin(2 * math.pi * k / 5)) for k in range(12)]  # 0, 3, 2, -2, -3, ...
    shaken = [torch.roll(first, shifts=s, dims=1) for s in shifts]
    result = Evaluator([LandmarkJitter(TASK)]).evaluate(frames_of(shaken, [first.clone() for _ in shifts], [None] * len(shifts)))
    d2 = np.abs(np.diff(shifts, 2)).mean()  # the image's own acceleration, whole pixels: 4.2
    assert result.summary["jitter_face_ref"] == 0.0  # identical images, identical points
    assert result.summary["jitter_face"] == pytest.approx(d2, rel=0.15)
    assert result.summary["jitter_mouth"] == pytest.approx(d2, rel=0.25)


@needs_landmarker
def test_jitter_reports_exact_landmarks_on_synthetic_data(data_dir: Path) -> None:
    from talker.data.layout import load_split
    from talker.data.synthetic import SyntheticClip

    split = load_split(SyntheticClip(num_frames=12, resolution=128, val_fraction=0.5).ensure(data_dir), "val")
    frames = [EvalFrame(int(split.img_ids[i]), split.images[i].float() / 255, split.images[i].float() / 255, split.lms[i],
                        int(split.aud_ids[i])) for i in range(len(split))]
    result = Evaluator([LandmarkJitter(TASK)]).evaluate(frames, EvalContext(landmarks_exact=True))
    s = result.summary
    assert s["jitter_face"] == s["jitter_face_ref"]  # render == ground truth here
    lms = split.lms.double().numpy()
    exact = np.mean([acceleration_magnitude(lms[k - 1 : k + 2][:, MOUTH]).mean() for k in range(1, len(lms) - 1)])
    assert s["jitter_mouth_exact"] == pytest.approx(exact)
    assert s["jitter_face"] >= s["jitter_face_exact"] * 0.5  # detection adds noise, never removes the motion


def test_frames_without_landmarks_need_the_landmarker(tmp_path: Path) -> None:
    image = still_scene()
    with pytest.warns(MetricUnavailableWarning, match="need the face landmarker"):
        result = Evaluator([Flicker()]).evaluate(frames_of([image] * 3, landmarks=[None] * 3))
    assert "landmarker" in result.unavailable["flicker"]
    with pytest.warns(MetricUnavailableWarning, match="face_landmarker.task"):
        result = Evaluator([LandmarkJitter(tmp_path / "face_landmarker.task")]).evaluate(frames_of([image] * 3))
    assert "face_landmarker.task" in result.unavailable["jitter"]
