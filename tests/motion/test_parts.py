"""The motion generator's parts: flow invertibility and log-determinant, masks, sync windows, smoothing."""

from __future__ import annotations

import numpy as np
import torch

from talker.audio import FrameWindows, video_windows
from talker.motion import CouplingFlow, RegressionMotion, SyncExpert, VariationalMotion, WaveNet, gaussian_smooth
from talker.motion.processing import frame_rows
from talker.motion.sync import pair_starts, windows_at


def randomize(module: torch.nn.Module) -> None:
    """Move zero-initialised layers (identity couplings) off zero, so the tests see a real transform."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p) * 0.1)


def test_flow_inverts_and_its_logdet_is_the_jacobians() -> None:
    flow = CouplingFlow(channels=4, cond_channels=3, hidden=8, num_layers=3)
    randomize(flow)
    z, cond, mask = torch.randn(1, 4, 5, dtype=torch.float64), torch.randn(1, 3, 5, dtype=torch.float64), torch.ones(1, 1, 5, dtype=torch.float64)
    flow = flow.double()
    eps, logdet = flow(z, cond, mask)
    back, logdet_reverse = flow(eps, cond, mask, reverse=True)
    torch.testing.assert_close(back, z)
    torch.testing.assert_close(logdet_reverse, -logdet)
    jacobian = torch.autograd.functional.jacobian(lambda x: flow(x.view(1, 4, 5), cond, mask)[0].reshape(-1), z.reshape(-1))
    torch.testing.assert_close(logdet[0], torch.linalg.slogdet(jacobian)[1])


def test_new_flow_is_the_identity() -> None:
    flow = CouplingFlow(channels=16, cond_channels=8, hidden=8, num_layers=4)  # even count: flips cancel
    z = torch.randn(2, 16, 7)
    eps, logdet = flow(z, torch.randn(2, 8, 7), torch.ones(2, 1, 7))
    torch.testing.assert_close(eps, z)
    assert logdet.abs().max() == 0


def test_wavenet_ignores_masked_frames() -> None:
    net = WaveNet(8, 3, dilations=(1, 2, 4))
    x, cond = torch.randn(1, 8, 20), torch.randn(1, 3, 20)
    mask = torch.ones(1, 1, 20)
    mask[..., 12:] = 0
    a = net(x * mask, cond, mask)
    x2 = x.clone()
    x2[..., 12:] = 100.0  # garbage in the padding
    b = net(x2 * mask, cond, mask)
    torch.testing.assert_close(a, b)
    assert net.receptive_field == 15


def test_generators_shapes_and_a_training_step_lowers_the_loss() -> None:
    torch.manual_seed(0)
    x, a, m = torch.randn(2, 30, 204), torch.randn(2, 30, 10), torch.ones(2, 30)
    for model in (VariationalMotion(10, hidden=16, flow_hidden=8), RegressionMotion(10, hidden=16)):
        optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
        first = None
        for _ in range(15):
            loss, parts, pred = model.loss(x, a, m)
            first = loss.item() if first is None else first
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        assert pred.shape == (2, 30, 204) and loss.item() < first
        assert model.generate(a).shape == (2, 30, 204)


def test_variational_samples_depend_on_the_noise_and_temperature_zero_is_deterministic() -> None:
    model = VariationalMotion(10, hidden=16, flow_hidden=8)
    randomize(model)
    a = torch.randn(1, 25, 10)
    g = lambda s: torch.Generator().manual_seed(s)  # noqa: E731
    assert not torch.allclose(model.generate(a, generator=g(0)), model.generate(a, generator=g(1)))
    torch.testing.assert_close(model.generate(a, temperature=0.0, generator=g(0)), model.generate(a, temperature=0.0, generator=g(1)))


def test_sync_windows_and_shifts() -> None:
    seq = torch.arange(40.0).view(1, 40, 1).expand(2, 40, 3)
    starts, shifted = pair_starts(40, 2, 50, 5, torch.Generator().manual_seed(0))
    w = windows_at(seq, starts, 5)
    assert w.shape == (100, 5, 3)
    torch.testing.assert_close(w[:, :, 0], starts.reshape(-1, 1).float() + torch.arange(5.0))
    assert ((shifted - starts).abs() >= 5).all()  # a shifted window never overlaps its own
    assert SyncExpert(audio_dim=3, window=5, hidden=4, embed=4)(w.repeat(1, 1, 20), w).shape == (100,)


def test_gaussian_smoothing() -> None:
    ramp = torch.linspace(0, 1, 50)[:, None, None].expand(50, 68, 3)
    torch.testing.assert_close(gaussian_smooth(ramp, 2.0)[10:40], ramp[10:40])  # linear parts stay
    noisy = torch.randn(200, 4, generator=torch.Generator().manual_seed(0))
    assert gaussian_smooth(noisy, 2.0).std() < 0.5 * noisy.std()
    assert gaussian_smooth(noisy, 0.0) is noisy


def test_frame_rows_take_each_frames_two_rows() -> None:
    windows = torch.arange(3 * 16 * 2, dtype=torch.float32).view(3, 16, 2)
    rows = frame_rows(windows)
    assert rows.shape == (3, 4)
    torch.testing.assert_close(rows[1], torch.cat([windows[1, 8], windows[1, 9]]))


def test_frame_rows_of_a_lazy_track_are_those_of_its_windows() -> None:
    """A FrameWindows track gives the rows without cutting windows; the last frame's second row is past
    the 7 rows (zeros), as in the dense windows."""
    lazy = FrameWindows(np.random.default_rng(0).normal(size=(7, 3)).astype(np.float32), num_frames=4)
    dense = video_windows(lazy.rows, 4)
    torch.testing.assert_close(frame_rows(lazy), frame_rows(dense), rtol=0, atol=0)
    assert frame_rows(lazy)[3, 3:].abs().sum() == 0 and frame_rows(lazy)[3, :3].abs().sum() > 0
