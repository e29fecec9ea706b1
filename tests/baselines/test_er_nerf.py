"""ER-NeRF's own parts: region attention, the eye gate, the uncertainty head and loss, the anchor pose encoding."""

from __future__ import annotations

import math

import pytest
import torch

from talker.baselines.er_nerf import AnchorPoseEncoding, ERNeRFField, RegionAttention, UncertaintyWeightedMSE
from talker.conditioning import Conditioning, ConditioningSpec
from talker.encoders import HashGrid, TriPlaneHashGrid
from talker.fields import EyeBlink, TorsoField
from talker.rendering import RenderOutput


def field(spec: ConditioningSpec = ConditioningSpec(), eye: bool = True) -> ERNeRFField:
    torch.manual_seed(0)
    planes = TriPlaneHashGrid(num_levels=4, level_dim=1, base_resolution=8, log2_hashmap_size=10, desired_resolution=64)
    with torch.no_grad():
        for plane in planes.planes.values():
            plane.embeddings.normal_(0, 0.5)
    return ERNeRFField(planes, spec, hidden_dim=16, geo_feat_dim=15, hidden_dim_color=16, eye=EyeBlink() if eye else None)


def test_region_attention_reweights_the_code_per_point() -> None:
    fusion = RegionAttention(hidden_dim=8)
    fusion.build(cond_dim=4, modulation_widths=[16, 16], position_dim=12)
    assert fusion.spatial_dim(4) == 4 and fusion.vector_dim(4) == 0
    x, pos = torch.rand(10, 3), torch.randn(10, 12)
    code = torch.tensor([1.0, -2.0, 0.5, 3.0])
    features, values = fusion(code).spatial(x, pos)
    torch.testing.assert_close(features, code * fusion.attention(pos))  # channel-wise, per point
    torch.testing.assert_close(fusion(2 * code).spatial(x, pos)[0], 2 * features)
    torch.testing.assert_close(values["audio_attention"], fusion.attention(pos).norm(dim=-1))  # for its loss
    assert not torch.allclose(features[0] / code, features[1] / code)  # points weight channels differently
    with pytest.raises(ValueError, match="position_dim > 0"):
        RegionAttention().build(4, [16], position_dim=0)


def test_eye_input_is_gated_per_point_and_reaches_the_density() -> None:
    f = field()
    x = torch.rand(40, 3) * 1.6 - 0.8
    open_, shut = f.density(x, Conditioning(), {"eye": 0.3}), f.density(x, Conditioning(), {"eye": 0.0})
    assert not torch.allclose(open_, shut)
    # sigma_net sees eye * sigmoid(gate(pos)): with the gate's output layer at zero that is eye / 2.
    torch.nn.init.zeros_(f.eye_gate.layers[-1].weight)
    h = f.sigma_net(torch.cat([f.encoder(x), torch.full((40, 1), 0.15)], dim=-1))
    torch.testing.assert_close(f.density(x, Conditioning(), {"eye": 0.3}), torch.exp(h[:, 0]))
    assert f.sigma_net.dim_in == f.encoder.output_dim + 1 and f.frame_keys == ("landmarks",)


def test_uncertainty_is_an_extra_output_of_training_only() -> None:
    f = field(eye=False)
    x, d = torch.rand(20, 3) * 1.6 - 0.8, torch.nn.functional.normalize(torch.randn(20, 3), dim=-1)
    out = f.train()(x, d, Conditioning())
    assert out.extras["uncertainty"].shape == (20,) and torch.all(out.extras["uncertainty"] > 0)  # softplus
    out.extras["uncertainty"].sum().backward()
    assert all(p.grad is None for p in f.encoder.parameters())  # it reads the encoding without gradient
    assert f.eval()(x, d, Conditioning()).extras == {}
    with torch.no_grad():
        assert f.train()(x, d, Conditioning()).extras == {}  # e.g. the frozen head of the torso stage


def render(rgb: torch.Tensor, u: torch.Tensor) -> RenderOutput:
    return RenderOutput(rgb=rgb, depth=torch.zeros(len(u)), opacity=torch.ones(len(u)), extras={"uncertainty": u})


def test_uncertainty_weighted_mse_starts_as_mse_and_moves_weight_to_uncertain_rays() -> None:
    loss = UncertaintyWeightedMSE(alpha=0.2)
    target = torch.zeros(4, 3)
    rgb = torch.tensor([[0.1] * 3, [0.2] * 3, [0.3] * 3, [0.4] * 3])
    u = torch.tensor([0.0, 0.0, 0.0, 2.0], requires_grad=True)
    error = (rgb**2).mean(dim=-1)
    assert loss(render(rgb, u), target, progress=0.0).item() == pytest.approx(error.mean().item())
    # At the end of the head stage: weights alpha + (1 - alpha) * 4 * softmax(u), plus the NLL.
    share = 4 * torch.softmax(u.detach(), 0)
    weighted = ((0.2 + 0.8 * share) * error).mean()
    beta = 1 + u.detach()
    nll = ((rgb.norm(dim=-1) / (2 * beta**2)) + torch.log(beta) ** 2 / 2).mean()
    value = loss(render(rgb, u), target, progress=1.0)
    assert value.item() == pytest.approx((weighted + nll).item(), rel=1e-6)
    assert share[3] > 1 > share[0]  # the uncertain ray counts more
    value.backward()
    assert u.grad[3] != 0  # the NLL teaches the uncertainty
    assert set(loss.terms) == {"rgb_weighted", "uncertainty_nll"}


def test_uncertainty_loss_without_an_uncertain_field_names_the_mismatch() -> None:
    out = RenderOutput(rgb=torch.zeros(2, 3), depth=torch.zeros(2), opacity=torch.zeros(2))
    with pytest.raises(KeyError, match="model.stages.head.photometric and field do not match"):
        UncertaintyWeightedMSE()(out, torch.zeros(2, 3), 0.5)


def look_at(distance: float, shift: tuple[float, float, float] = (0.0, 0.0, 0.0), yaw: float = 0.0) -> torch.Tensor:
    """A camera-to-world pose on the +z axis looking at the origin (OpenGL camera: looking down -z)."""
    c2w = torch.eye(4)
    c, s = math.cos(yaw), math.sin(yaw)
    c2w[:3, :3] = torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    c2w[:3, 3] = c2w[:3, :3] @ torch.tensor([0.0, 0.0, distance]) + torch.tensor(shift)
    return c2w


def test_anchor_pose_encoding_projects_head_points_into_the_image() -> None:
    enc = AnchorPoseEncoding(anchors=[[0.0, 0.0, 0.0], [0.1, 0.0, 0.0]], frequencies=2).requires_grad_(False)
    assert enc.output_dim == 4 * (1 + 2 * 2)
    projected = enc.project(look_at(2.0)).view(2, 2)
    torch.testing.assert_close(projected, torch.tensor([[0.0, 0.0], [0.1 / -2.0, 0.0]]))  # x / z, z = -2
    # A camera moved right sees the head move left; a nearer one sees it bigger.
    assert enc.project(look_at(2.0, shift=(0.2, 0.0, 0.0))).view(2, 2)[0, 0] > 0
    near = enc.project(look_at(1.0)).view(2, 2)
    assert abs(near[1, 0]) == pytest.approx(2 * abs(projected[1, 0]))


def test_torso_with_anchor_pose_encoding_learns_its_anchors() -> None:
    torch.manual_seed(0)
    torso = TorsoField(HashGrid(2, 4, 2, 8, 10, 64), hidden_dim=8, deform_hidden=8, pose_encoding=AnchorPoseEncoding())
    coords = torch.rand(32, 2) * 2 - 1
    a, b = torso(coords, look_at(3.0)), torso(coords, look_at(3.0, yaw=0.2))
    assert not torch.allclose(a.alpha, b.alpha)
    (a.alpha.sum() + a.rgb.sum()).backward()
    assert torso.pose_encoding.anchors.grad.abs().sum() > 0
