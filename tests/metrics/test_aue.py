"""AUE with MediaPipe's blendshapes: the sets, the arithmetic on known scores, and real frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from talker.data.face_landmarker import FaceMesh
from talker.metrics import AUE, EvalFrame, Evaluator
from talker.metrics.aue import blendshape_sets

from .test_temporal import SHARED, TASK, needs_landmarker

NAMES = ["_neutral", "browInnerUp", "eyeBlinkLeft", "eyeLookInLeft", "jawOpen", "mouthSmileLeft", "cheekPuff", "noseSneerLeft"]


def test_sets_split_lower_and_upper_face_and_leave_gaze_out() -> None:
    sets = blendshape_sets(NAMES)
    assert sets["aue_lower"] == ["cheekPuff", "jawOpen", "mouthSmileLeft"]
    assert sets["aue_upper"] == ["browInnerUp", "eyeBlinkLeft", "noseSneerLeft"]
    assert sorted(sets["aue"]) == sorted(sets["aue_lower"] + sets["aue_upper"])  # no _neutral, no eyeLook*


class _Scores:
    """A stand-in detector returning the blendshape scores each image was made with."""

    def __init__(self, scores: dict[int, dict[str, float] | None]) -> None:
        self.scores = scores

    def prepare(self) -> None:
        pass

    def forget(self) -> None:
        pass

    def mesh(self, image: torch.Tensor) -> FaceMesh | None:
        scores = self.scores[id(image)]
        return None if scores is None else FaceMesh(np.zeros((478, 3), np.float32), scores)


def test_aue_is_the_mean_absolute_score_difference() -> None:
    truth, render, faceless = torch.zeros(4, 4, 3), torch.zeros(4, 4, 3), torch.zeros(4, 4, 3)
    base = dict.fromkeys(NAMES, 0.1)
    metric = AUE("unused.task")
    metric.detector = _Scores({id(truth): base, id(render): {**base, "jawOpen": 0.7, "browInnerUp": 0.4, "eyeBlinkLeft": 0.0}, id(faceless): None})
    result = Evaluator([metric]).evaluate([EvalFrame(0, render, truth), EvalFrame(1, truth, truth), EvalFrame(2, faceless, truth)])
    # frame 0: lower |0.6| over 3 names, upper |0.3| + |-0.1| over 3, all 1.0 over 6; frame 1: zero; frame 2: no face
    assert result.per_frame[0] == {"frame_id": 0, "aue": pytest.approx(1 / 6), "aue_lower": pytest.approx(0.2), "aue_upper": pytest.approx(0.4 / 3)}
    assert result.summary["aue"] == pytest.approx(1 / 12) and result.summary["aue_lower"] == pytest.approx(0.1)
    assert result.summary["aue_detected"] == pytest.approx(2 / 3)


@needs_landmarker
def test_aue_on_real_frames() -> None:
    from talker.utils.media import read_video

    video, _ = read_video(SHARED / "data" / "video" / "May_5s.mp4")
    frames = [torch.from_numpy(np.ascontiguousarray(video[k][::2, ::2])).float() / 255 for k in (0, 30, 60, 90)]
    result = Evaluator([AUE(TASK)]).evaluate([EvalFrame(0, frames[0], frames[0].clone())] + [EvalFrame(k, f, frames[0]) for k, f in enumerate(frames[1:], 1)])
    assert result.per_frame[0]["aue"] == 0.0  # the same picture
    assert max(row["aue_lower"] for row in result.per_frame[1:]) > 0.01  # other mouth shapes
    assert result.summary["aue_detected"] == 1.0
