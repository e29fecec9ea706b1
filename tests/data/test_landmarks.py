import torch

from talker.data.landmarks import BLINK, blinking, eye_strip
from talker.fields.inputs import eye_aspect_ratio


def faces_with_eye_ratios(ratios: list[float]) -> torch.Tensor:
    """``[N, 68, 2]`` landmarks, zero but for two unit-wide eyes whose aspect ratio is ``ratios[n]``."""
    faces = torch.zeros(len(ratios), 68, 2)
    for n, ratio in enumerate(ratios):
        for first, x in ((36, 10.0), (42, 20.0)):  # p0 .. p5: corner, upper lid x2, corner, lower lid x2
            lids = torch.tensor([[0, 0], [0.3, -ratio / 2], [0.7, -ratio / 2], [1, 0], [0.7, ratio / 2], [0.3, ratio / 2]])
            faces[n, first : first + 6] = lids + torch.tensor([x, 30.0])
    return faces


def test_a_frame_blinks_below_a_share_of_the_median_eye_ratio() -> None:
    ratios = [0.3] * 8 + [0.0, 0.3 * BLINK - 0.01, 0.3 * BLINK + 0.01]
    faces = faces_with_eye_ratios(ratios)
    torch.testing.assert_close(eye_aspect_ratio(faces), torch.tensor(ratios))
    assert blinking(faces).nonzero().flatten().tolist() == [8, 9]


def test_the_eye_strip_holds_the_lids_and_the_pad() -> None:
    face = faces_with_eye_ratios([0.3])[0]  # eyes x 10..21, y 29.85..30.15
    assert eye_strip(face, 64, 64) == (26, 34, 7, 25)
    assert eye_strip(face, 64, 64, pad=0) == (29, 31, 10, 22)
    assert eye_strip(face, 32, 20) == (26, 32, 7, 20)  # clipped to the frame
