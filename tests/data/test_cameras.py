import numpy as np
import torch
from scipy.spatial.transform import Rotation

from talker.data.cameras import nerf_to_ngp, ngp_to_nerf, pixel_rays, project


def test_nerf_ngp_round_trip() -> None:
    pose = np.eye(4)
    pose[:3, :3] = Rotation.from_euler("xyz", [10, -20, 5], degrees=True).as_matrix()
    pose[:3, 3] = [0.1, -0.2, 0.7]
    back = ngp_to_nerf(nerf_to_ngp(pose, 4.0, (0.1, 0.2, 0.3)), 4.0, (0.1, 0.2, 0.3))
    np.testing.assert_allclose(back, pose, atol=1e-12)


def test_rays_pass_through_projected_points() -> None:
    c2w = torch.eye(4)
    c2w[:3, :3] = torch.from_numpy(Rotation.from_euler("y", 8, degrees=True).as_matrix()).float()
    c2w[:3, 3] = torch.tensor([0.1, 0.0, -3.0])
    intrinsics = torch.tensor([300.0, 300.0, 64.0, 64.0])
    points = torch.tensor([[0.0, 0.0, 0.0], [0.2, -0.1, 0.3]])
    uv = project(points, c2w, intrinsics)
    pixels = (uv - 0.5).round().long()  # pixel whose centre is nearest
    o, d = pixel_rays(c2w, intrinsics, pixels)
    # distance from each point to its pixel's ray is below half a pixel's footprint at that depth
    to_point = points - o
    dist = (to_point - (to_point * d).sum(-1, keepdim=True) * d).norm(dim=-1)
    depth = (to_point * d).sum(-1)
    assert torch.all(dist < 0.75 * depth / 300.0)
