import math

import torch

from talker.encoders import FrequencyEncoding, SphericalHarmonics


def test_spherical_harmonics_are_orthonormal() -> None:
    gen = torch.Generator().manual_seed(0)
    d = torch.randn(400_000, 3, generator=gen, dtype=torch.float64)
    d = d / d.norm(dim=-1, keepdim=True)
    y = SphericalHarmonics(4)(d)
    gram = 4 * math.pi * (y.T @ y) / d.shape[0]  # Monte-Carlo estimate of the integral over the sphere
    torch.testing.assert_close(gram, torch.eye(16, dtype=torch.float64), atol=0.02, rtol=0)


def test_frequency_encoding_values() -> None:
    enc = FrequencyEncoding(input_dim=1, num_frequencies=2)
    x = torch.tensor([[0.5]])
    expected = torch.tensor([[0.5, math.sin(0.5), math.sin(1.0), math.cos(0.5), math.cos(1.0)]])
    torch.testing.assert_close(enc(x), expected)
    assert enc.output_dim == 5
