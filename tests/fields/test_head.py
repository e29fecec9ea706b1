import pytest
import torch

from talker.conditioning import Conditioning, ConditioningSpec
from talker.encoders import HashGrid
from talker.fields import EyeBlink, HeadField, IndividualCode, eye_aspect_ratio


def field(spec: ConditioningSpec = ConditioningSpec()) -> HeadField:
    torch.manual_seed(0)
    grid = HashGrid(3, 4, 2, 8, 12, 64)
    with torch.no_grad():
        grid.embeddings.normal_(0, 0.5)
    return HeadField(grid, spec, num_layers=3, hidden_dim=16, geo_feat_dim=15, hidden_dim_color=16)


def test_density_equals_forward_sigma() -> None:
    f = field()
    x = torch.rand(20, 3) * 2 - 1
    d = torch.nn.functional.normalize(torch.randn(20, 3), dim=-1)
    torch.testing.assert_close(f.density(x, Conditioning()), f(x, d, Conditioning()).sigma)


def test_concatenated_vector_widens_the_input_and_matters() -> None:
    f = field(ConditioningSpec(vector_dim=6))
    assert f.sigma_net.dim_in == f.encoder.output_dim + 6
    x = torch.rand(10, 3) * 2 - 1
    a = f.density(x, Conditioning(vector=torch.zeros(6)))
    b = f.density(x, Conditioning(vector=torch.ones(6)))
    assert not torch.allclose(a, b)


def test_modulation_widths_are_the_sigma_net_hidden_layers() -> None:
    assert field().modulation_widths == [16, 16]


def landmark_frame(eye_open: float) -> dict[str, torch.Tensor]:
    """A window of 5 frames of 68 landmarks whose eyes are open by ``eye_open`` (eye width 1)."""
    lms = torch.zeros(5, 68, 3)
    for start, x0 in ((36, 0.0), (42, 2.0)):
        # corners p0, p3; upper lid p1, p2; lower lid p5, p4
        lms[:, start + 0, :2] = torch.tensor([x0, 0.0])
        lms[:, start + 3, :2] = torch.tensor([x0 + 1.0, 0.0])
        lms[:, start + 1, :2] = torch.tensor([x0 + 0.33, -eye_open / 2])
        lms[:, start + 2, :2] = torch.tensor([x0 + 0.66, -eye_open / 2])
        lms[:, start + 5, :2] = torch.tensor([x0 + 0.33, eye_open / 2])
        lms[:, start + 4, :2] = torch.tensor([x0 + 0.66, eye_open / 2])
    return {"landmarks": lms}


def test_eye_aspect_ratio_measures_lid_distance_over_eye_width() -> None:
    assert eye_aspect_ratio(landmark_frame(0.3)["landmarks"][2]).item() == pytest.approx(0.3)
    assert eye_aspect_ratio(landmark_frame(0.0)["landmarks"][2]).item() == pytest.approx(0.0)
    rotated = landmark_frame(0.3)["landmarks"][2, :, :2] @ torch.tensor([[0.6, -0.8], [0.8, 0.6]]) * 3.0
    assert eye_aspect_ratio(rotated).item() == pytest.approx(0.3, rel=1e-5)  # scale and rotation free


def test_eye_blink_input_reaches_the_density() -> None:
    torch.manual_seed(0)
    grid = HashGrid(3, 4, 2, 8, 12, 64)
    f = HeadField(grid, ConditioningSpec(), num_layers=3, hidden_dim=16, geo_feat_dim=15, density_inputs=[EyeBlink()])
    assert f.sigma_net.dim_in == grid.output_dim + 1 and f.frame_keys == ("landmarks",)
    x = torch.rand(10, 3) * 2 - 1
    open_, shut = f.density(x, Conditioning(), landmark_frame(0.3)), f.density(x, Conditioning(), landmark_frame(0.0))
    assert not torch.allclose(open_, shut)
    torch.testing.assert_close(f.density(x, Conditioning(), {"eye": 0.3}), open_)  # an explicit override
    with pytest.raises(KeyError, match="EyeBlink needs frame\\['landmarks'\\]"):
        f.density(x, Conditioning(), {"audio": torch.zeros(3)})


def test_individual_codes_select_by_training_index() -> None:
    torch.manual_seed(0)
    code = IndividualCode(num_codes=5, dim=3)
    f = HeadField(HashGrid(3, 4, 2, 8, 12, 64), ConditioningSpec(), hidden_dim=16, geo_feat_dim=15, color_inputs=[code])
    assert f.color_net.dim_in == 16 + 15 + 3
    x, d = torch.rand(10, 3) * 2 - 1, torch.nn.functional.normalize(torch.randn(10, 3), dim=-1)
    a, b = f(x, d, Conditioning(), {"index": 1}), f(x, d, Conditioning(), {"index": 3})
    assert not torch.allclose(a.rgb, b.rgb) and torch.equal(a.sigma, b.sigma)  # colour only
    torch.testing.assert_close(f(x, d, Conditioning(), {}).rgb, f(x, d, Conditioning(), {"index": 0}).rgb)
    a.rgb.sum().backward()
    used = code.codes.grad.abs().sum(dim=1) > 0
    assert used.tolist() == [False, True, False, False, False]
    with pytest.raises(IndexError, match="raise its num_codes"):
        f(x, d, Conditioning(), {"index": 5})


def test_batched_densities_share_the_encoding_and_match_one_by_one() -> None:
    f = field(ConditioningSpec(vector_dim=6))
    x = torch.rand(30, 3) * 2 - 1
    conds = [Conditioning(vector=torch.full((6,), float(v))) for v in (0.0, 0.5, 1.0)]
    expected = torch.stack([f.density(x, c) for c in conds])
    torch.testing.assert_close(f.densities(x, conds), expected)


def test_field_runs_under_autocast_with_fp32_density() -> None:
    f = field()
    x = torch.rand(20, 3) * 2 - 1
    d = torch.nn.functional.normalize(torch.randn(20, 3), dim=-1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = f(x, d, Conditioning())
    assert out.sigma.dtype == torch.float32  # trunc_exp runs in fp32: no overflow at large logits
    torch.testing.assert_close(out.sigma, f(x, d, Conditioning()).sigma, rtol=0.05, atol=1e-3)


@pytest.mark.requires_cuda
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_field_under_cuda_autocast_keeps_fp32_params_and_matches(dtype: torch.dtype) -> None:
    f = field().cuda()
    x = torch.rand(4096, 3, device="cuda") * 2 - 1
    d = torch.nn.functional.normalize(torch.randn(4096, 3, device="cuda"), dim=-1)
    expected = f(x, d, Conditioning())
    with torch.autocast("cuda", dtype=dtype):
        out = f(x, d, Conditioning())
    assert all(p.dtype == torch.float32 for p in f.parameters())
    assert out.sigma.dtype == torch.float32
    torch.testing.assert_close(out.sigma, expected.sigma, rtol=0.05, atol=1e-2)
    torch.testing.assert_close(out.rgb.float(), expected.rgb, rtol=0, atol=2e-2)
