import math

import torch

from talker.encoders import HashGrid
from talker.fields import IndividualCode, TorsoField, composite_torso, pixel_coords, pose_vector
from talker.fields.torso import TorsoOutput, euler_xyz_to_matrix


def torso(**kw) -> TorsoField:
    torch.manual_seed(0)
    grid = HashGrid(2, 4, 2, 8, 10, 64, gridtype="tiled")
    with torch.no_grad():
        grid.embeddings.normal_()
    return TorsoField(grid, hidden_dim=16, deform_hidden=16, **kw)


def test_pose_vector_inverts_euler_angles() -> None:
    angles = torch.tensor([0.3, -0.2, 0.1])
    c2w = torch.eye(4)
    c2w[:3, :3] = euler_xyz_to_matrix(angles)
    c2w[:3, 3] = torch.tensor([0.1, -0.2, 3.0])
    torch.testing.assert_close(pose_vector(c2w), torch.tensor([0.3, -0.2, 0.1, 0.1, -0.2, 3.0]))


def test_pixel_coords_put_the_image_corners_at_plus_minus_one() -> None:
    coords = pixel_coords(torch.tensor([[0, 0], [449, 0], [449, 449]]), width=450, height=450)
    torch.testing.assert_close(coords, torch.tensor([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0]]))


def test_torso_outputs_and_deformation() -> None:
    field = torso()
    coords = pixel_coords(torch.stack(torch.meshgrid(torch.arange(8), torch.arange(8), indexing="xy"), -1).reshape(-1, 2), 8, 8)
    out = field(coords, torch.eye(4))
    assert out.alpha.shape == (64,) and out.rgb.shape == (64, 3) and out.offset.shape == (64, 2)
    assert torch.all((out.alpha > 0) & (out.alpha < 1)) and torch.all((out.rgb > 0) & (out.rgb < 1))
    # With the deformation switched off, the grid is read at shrink * x.
    torch.nn.init.zeros_(field.deform_net.layers[-1].weight)
    still = field(coords, torch.eye(4))
    assert torch.all(still.offset == 0)
    context = torch.cat([field.coord_encoder(coords * 0.8), field.pose_encoding(torch.eye(4)).expand(64, -1)], -1)
    h = field.net(torch.cat([field.grid(coords * 0.8), context], -1))
    torch.testing.assert_close(still.alpha, torch.sigmoid(h[:, 0]))


def test_torso_depends_on_pose_and_code_and_trains() -> None:
    field = torso(code=IndividualCode(num_codes=4, dim=8))
    coords = torch.rand(32, 2) * 2 - 1
    turned = torch.eye(4)
    turned[:3, :3] = euler_xyz_to_matrix(torch.tensor([0.0, 0.3, 0.0]))
    a = field(coords, torch.eye(4), {"index": 1})
    assert not torch.allclose(a.alpha, field(coords, turned, {"index": 1}).alpha)
    assert not torch.allclose(a.alpha, field(coords, torch.eye(4), {"index": 2}).alpha)
    (a.alpha.sum() + a.rgb.sum()).backward()
    for name, p in field.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_composite_torso_under_the_head() -> None:
    out = TorsoOutput(alpha=torch.tensor([1.0, 0.25, 0.0]), rgb=torch.tensor([[1.0, 0, 0]] * 3), offset=torch.zeros(3, 2))
    background = torch.tensor([[0.0, 0, 1.0]] * 3)
    expected = torch.tensor([[1.0, 0, 0], [0.25, 0, 0.75], [0, 0, 1.0]])
    torch.testing.assert_close(composite_torso(out, background), expected)
    # The head is then rendered over it: rgb = head + (1 - opacity) * background'.
    head, opacity = torch.tensor([[0.0, 0.5, 0.0]] * 3), torch.tensor([0.5, 0.5, 0.5])
    image = head + (1 - opacity).unsqueeze(-1) * composite_torso(out, background)
    assert math.isclose(image[1, 2].item(), 0.375)
