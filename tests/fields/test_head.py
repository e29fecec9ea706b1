import torch

from talker.conditioning import Conditioning, ConditioningSpec
from talker.encoders import HashGrid
from talker.fields import MLP, HeadField


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


def test_modulation_is_h_times_one_plus_scale_plus_shift() -> None:
    mlp = MLP(4, 2, hidden_dim=3, num_layers=2, bias=False)
    x = torch.randn(5, 4)
    scale, shift = torch.tensor([0.5, -1.0, 2.0]), torch.tensor([0.1, 0.2, -0.3])
    h = x @ mlp.layers[0].weight.T
    expected = torch.relu(h * (1 + scale) + shift) @ mlp.layers[1].weight.T
    torch.testing.assert_close(mlp(x, [scale], [shift]), expected)


def test_concatenated_vector_widens_the_input_and_matters() -> None:
    f = field(ConditioningSpec(vector_dim=6))
    assert f.sigma_net.dim_in == f.encoder.output_dim + 6
    x = torch.rand(10, 3) * 2 - 1
    a = f.density(x, Conditioning(vector=torch.zeros(6)))
    b = f.density(x, Conditioning(vector=torch.ones(6)))
    assert not torch.allclose(a, b)


def test_modulation_widths_are_the_sigma_net_hidden_layers() -> None:
    assert field().modulation_widths == [16, 16]
