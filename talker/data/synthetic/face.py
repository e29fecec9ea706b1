"""Procedural face: skull, relief (nose, brows, cheeks, chin), eyes with lids, lips, teeth and mouth cavity.

Head space is the ngp frame of talker's NeRF: x right, y down, z away from the camera; the face looks
towards -z. The skull is an ellipsoid; the face is a height field on its front: a point of face
coordinates ``(u, v) = (x, y)`` lies at depth ``z = skull_z(u, v) - relief(u, v)`` (relief > 0
protrudes towards the camera, < 0 is a cavity such as the mouth interior).

The relief, albedo and material of the face are kept in textures over a box of face coordinates. The
static part (nose, brows, sockets, cheeks, chin, skin tone) is built once per clip; every frame only
the eye and mouth patches are rebuilt from a :class:`FaceState`. The 68 landmarks come from the same
contour formulas that paint the features, so they lie on the features they name by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from talker.data.synthetic.identity import Identity

# Materials of head surface points (labels of the rendered head, used by tests and the parsing).
SKIN, HAIR, BROW, EYE, IRIS, LIPS, TEETH, MOUTH, EAR = range(9)
OPENING = (EYE, IRIS)  # visible eyeball
MOUTH_PARTS = (LIPS, TEETH, MOUTH)

# Face box in face coordinates: every relief feature vanishes before its border.
FACE_BOX = (-0.25, 0.25, -0.22, 0.42)  # u0, u1, v0, v1
RIM_Q = 0.85  # relief is zero beyond this fraction of the skull's outline ((u/a)^2 + (v/b)^2)

SCLERA = np.array([0.93, 0.91, 0.87])
TEETH_RGB = np.array([0.93, 0.91, 0.84])
CAVITY_RGB = np.array([0.23, 0.06, 0.07])
TONGUE_RGB = np.array([0.66, 0.30, 0.32])


@dataclass(frozen=True)
class FaceState:
    """Expression of one frame.

    Attributes:
        mouth_open: gap between the inner lips at the centre, head units (0 = closed).
        mouth_width: spread of the mouth corners (1 neutral, > 1 "ee", < 1 narrower).
        mouth_round: lip rounding / protrusion in [0, 1] ("oo").
        eye_open: 1 open, 0 closed.
    """

    mouth_open: float = 0.0
    mouth_width: float = 1.0
    mouth_round: float = 0.0
    eye_open: float = 1.0


def _smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _bump(u: np.ndarray, v: np.ndarray, cu: float, cv: float, ru: float, rv: float) -> np.ndarray:
    return np.exp(-(((u - cu) / ru) ** 2 + ((v - cv) / rv) ** 2))


def skull_q(identity: Identity, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    a, b, _ = identity.radii
    return (u / a) ** 2 + (v / b) ** 2


def skull_z(identity: Identity, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Depth of the skull's front surface above ``(u, v)`` (the rim where outside the outline)."""
    return -identity.radii[2] * np.sqrt(np.clip(1.0 - skull_q(identity, u, v), 0.0, None))


def skin_albedo(identity: Identity, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``[..., 3]`` skin colour: warmer cheeks and lips area, slightly darker under the eyes."""
    skin = np.asarray(identity.skin)
    s = identity.eye_spacing
    blush = _bump(u, v, -0.15, 0.08, 0.07, 0.06) + _bump(u, v, 0.15, 0.08, 0.07, 0.06)
    shade = _bump(u, v, -s, identity.eye_v + 0.035, 0.05, 0.02) + _bump(
        u, v, s, identity.eye_v + 0.035, 0.05, 0.02
    )
    rgb = skin * (1.0 - 0.07 * shade)[..., None]
    return rgb + (0.05 * blush)[..., None] * np.array([1.0, -0.4, -0.4]) * skin


class FaceModel:
    """Textures of one identity's face over :data:`FACE_BOX` at ``texel`` head units per texel."""

    def __init__(self, identity: Identity, texel: float) -> None:
        self.identity, self.texel = identity, texel
        u0, u1, v0, v1 = FACE_BOX
        self.u = np.arange(u0, u1 + 1e-9, texel)
        self.v = np.arange(v0, v1 + 1e-9, texel)
        uu, vv = np.meshgrid(self.u, self.v)  # [V, U]
        self.static_relief = self.relief_static(uu, vv)
        self.static_albedo = skin_albedo(identity, uu, vv)
        self.static_label = np.full(uu.shape, SKIN, dtype=np.uint8)
        self._paint_brows(uu, vv)
        self.skull = skull_z(identity, uu, vv)
        self.inside = skull_q(identity, uu, vv) < RIM_Q
        self._march_bounds(uu, vv)

    def _march_bounds(self, u: np.ndarray, v: np.ndarray) -> None:
        """How far in front of / behind the skull the face can be near each texel, for every expression:
        the static relief's extremes within 0.05 units (rays tilt by up to ~0.04 over the nose height),
        widened where the lips bulge and the mouth and eyes open."""
        idt = self.identity
        reach = max(3, int(round(0.1 / self.texel)) | 1)
        near = ndimage.maximum_filter(self.static_relief, size=reach, mode="nearest") + 0.004
        far = np.clip(-ndimage.minimum_filter(self.static_relief, size=reach, mode="nearest"), 0.0, None) + 0.004
        mouth = (np.abs(u) < 0.2) & (np.abs(v - idt.mouth_v - 0.015) < 0.15)
        eyes = (np.abs(np.abs(u) - idt.eye_spacing) < 0.14) & (np.abs(v - idt.eye_v) < 0.11)
        self.march_near = (near + 0.045 * mouth + 0.015 * eyes).astype(np.float32)
        self.march_far = (far + 0.06 * mouth + 0.015 * eyes).astype(np.float32)

    # -- static features ---------------------------------------------------------------------

    def relief_static(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Nose, brow ridge, eye sockets, cheekbones, muzzle, chin; zero near the box border and rim."""
        idt = self.identity
        s, ev, mv = idt.eye_spacing, idt.eye_v, idt.mouth_v
        tip_v, tip_h, tip_w = idt.nose
        root_v = ev - 0.01
        base_v = tip_v + 0.03
        # Nose: a ridge growing from the root to the tip, dropping to the base under the tip.
        t = np.clip((v - root_v) / (tip_v - root_v), 0.0, 1.0)
        along = np.where(v <= tip_v, 0.18 + 0.82 * t**1.4, 1.0 - 0.7 * _smoothstep(tip_v, base_v, v))
        along *= _smoothstep(root_v - 0.05, root_v, v) * (1.0 - _smoothstep(base_v, base_v + 0.012, v))
        width = 0.014 + (0.8 * tip_w - 0.014) * t
        nose = tip_h * along * np.exp(-((u / width) ** 2))
        nose += (
            0.3
            * tip_h
            * (
                _bump(u, v, -tip_w, tip_v + 0.012, 0.018, 0.016)
                + _bump(u, v, tip_w, tip_v + 0.012, 0.018, 0.016)
            )
        )
        nose += 0.15 * tip_h * _bump(u, v, 0.0, tip_v, 0.018, 0.016)
        relief = nose
        relief += 0.018 * (
            _bump(u, v, -s, idt.brow_v + 0.02, 0.08, 0.03) + _bump(u, v, s, idt.brow_v + 0.02, 0.08, 0.03)
        )
        relief -= 0.022 * (_bump(u, v, -s, ev, 0.07, 0.045) + _bump(u, v, s, ev, 0.07, 0.045))
        relief += 0.012 * (_bump(u, v, -0.15, 0.05, 0.06, 0.05) + _bump(u, v, 0.15, 0.05, 0.06, 0.05))
        relief += 0.022 * _bump(u, v, 0.0, mv, 0.09, 0.07)
        relief -= (
            0.003
            * np.exp(-((u / 0.007) ** 2))
            * _smoothstep(base_v, base_v + 0.01, v)
            * (1 - _smoothstep(mv - 0.04, mv - 0.025, v))
        )
        relief -= 0.006 * _bump(u, v, 0.0, mv + 0.072, 0.05, 0.012)
        relief += 0.022 * _bump(u, v, 0.0, mv + 0.135, 0.06, 0.045)
        u0, u1, v0, v1 = FACE_BOX
        border = np.minimum.reduce([u - u0, u1 - u, v - v0, v1 - v])
        fade = _smoothstep(0.0, 0.03, border) * (
            1.0 - _smoothstep(RIM_Q - 0.12, RIM_Q - 0.02, skull_q(idt, u, v))
        )
        return relief * fade

    def brow_curve(self, side: int, u: np.ndarray) -> np.ndarray:
        """``v`` of the brow centre line above the eye on ``side`` (-1 image left, +1 image right)."""
        s = (u - side * self.identity.eye_spacing) / 0.075
        return self.identity.brow_v + 0.016 * s**2 - 0.004 * side * s

    def _paint_brows(self, u: np.ndarray, v: np.ndarray) -> None:
        hair = np.asarray(self.identity.hair)
        for side in (-1, 1):
            s = (u - side * self.identity.eye_spacing) / 0.075
            thickness = 0.011 * (1.0 - 0.55 * np.clip(side * s, 0, 1)) * (np.abs(s) < 1.0)
            brow = np.abs(v - self.brow_curve(side, u)) < thickness
            strands = 0.85 + 0.15 * np.sin(u * 900.0 + v * 400.0)
            self.static_albedo[brow] = (hair * 1.1 * strands[brow, None]).clip(0, 1)
            self.static_label[brow] = BROW

    # -- dynamic features --------------------------------------------------------------------

    def eye_lids(
        self, side: int, u: np.ndarray, eye_open: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Upper and lower lid edges ``v`` and the inside-the-eye mask over ``u``, for one eye."""
        idt = self.identity
        half_w, upper, lower = idt.eye_size
        s = (u - side * idt.eye_spacing) / half_w
        inside = np.abs(s) < 1.0
        shape = np.clip(1.0 - s**2, 0.0, None) ** 0.55
        v_lower = idt.eye_v + lower * shape
        v_upper = v_lower - eye_open * (upper + lower) * shape
        return v_upper, v_lower, inside

    def eyeball_relief(self, side: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Relief of the visible eyeball: a cap bulging 6 thousandths out of the socket at its centre
        and sinking just below the lid line towards the corners (so the lids overlap it)."""
        idt = self.identity
        d2 = ((u - side * idt.eye_spacing) ** 2 + (v - idt.eye_v) ** 2) / idt.eye_size[0] ** 2
        return self.relief_static(u, v) + 0.006 - 0.008 * d2

    def lid_relief(self, side: int, u: np.ndarray, v: np.ndarray, static: np.ndarray) -> np.ndarray:
        """Skin relief around an eye: the lids hug the eyeball, 3 thousandths in front of it."""
        half_w = self.identity.eye_size[0]
        zone = ((u - side * self.identity.eye_spacing) / (1.35 * half_w)) ** 2 + (
            (v - self.identity.eye_v) / 0.048
        ) ** 2
        weight = 1.0 - _smoothstep(0.6, 1.0, zone)
        lifted = np.maximum(static, self.eyeball_relief(side, u, v) + 0.003)
        return static + weight * (lifted - static)

    def mouth_shape(self, state: FaceState) -> dict[str, float]:
        idt = self.identity
        outer = idt.mouth_half_width * state.mouth_width * (1.0 - 0.22 * state.mouth_round)
        return {
            "outer_w": outer,
            "inner_w": outer - 0.008,
            "open_up": 0.35 * state.mouth_open,
            "open_down": 0.65 * state.mouth_open,
            "exponent": 0.9 - 0.45 * state.mouth_round,
        }

    def mouth_contours(self, state: FaceState, u: np.ndarray) -> dict[str, np.ndarray]:
        """``v`` of the inner and outer, upper and lower lip lines over ``u``."""
        m = self.mouth_shape(state)
        mv = self.identity.mouth_v
        t_up, t_down = self.identity.lip_thickness
        inner = np.clip(1.0 - (u / m["inner_w"]) ** 2, 0.0, None) ** m["exponent"]
        outer = np.clip(1.0 - (u / m["outer_w"]) ** 2, 0.0, None) ** 0.55
        bow = 1.0 - 0.25 * np.exp(-((u / 0.011) ** 2)) + 0.08 * np.exp(-(((np.abs(u) - 0.02) / 0.012) ** 2))
        fuller = 1.0 + 0.35 * state.mouth_round
        return {
            "inner_up": mv - m["open_up"] * inner,
            "inner_down": mv + m["open_down"] * inner,
            "outer_up": mv - m["open_up"] * inner - t_up * fuller * outer * bow,
            "outer_down": mv + m["open_down"] * inner + t_down * fuller * outer,
        }

    def pucker_relief(self, state: FaceState, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Rounded lips push the whole mouth forward."""
        return 0.014 * state.mouth_round * _bump(u, v, 0.0, self.identity.mouth_v, 0.06, 0.04)

    def skin_relief(self, state: FaceState, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Relief of the skin surface (lids, lip borders) at arbitrary points: where landmarks sit."""
        static = self.relief_static(u, v) + self.pucker_relief(state, u, v)
        for side in (-1, 1):
            static = self.lid_relief(side, u, v, static)
        return static

    # -- per-frame textures ------------------------------------------------------------------

    def textures(self, state: FaceState) -> FaceTextures:
        """Relief, albedo and material of the face for one expression."""
        relief = self.static_relief.copy()
        albedo = self.static_albedo.copy()
        label = self.static_label.copy()
        for side in (-1, 1):
            self._paint_eye(side, state.eye_open, relief, albedo, label)
        self._paint_mouth(state, relief, albedo, label)
        return FaceTextures(self, relief, albedo, label)

    def _patch(
        self, cu: float, cv: float, hu: float, hv: float
    ) -> tuple[slice, slice, np.ndarray, np.ndarray]:
        u0, _, v0, _ = FACE_BOX
        iu = slice(max(0, int((cu - hu - u0) / self.texel)), int((cu + hu - u0) / self.texel) + 2)
        iv = slice(max(0, int((cv - hv - v0) / self.texel)), int((cv + hv - v0) / self.texel) + 2)
        uu, vv = np.meshgrid(self.u[iu], self.v[iv])
        return iv, iu, uu, vv

    def _paint_eye(self, side: int, eye_open: float, relief, albedo, label) -> None:
        idt = self.identity
        cu, cv = side * idt.eye_spacing, idt.eye_v
        iv, iu, u, v = self._patch(cu, cv, 0.085, 0.06)
        static = relief[iv, iu]
        skin = self.lid_relief(side, u, v, static)
        v_upper, v_lower, inside = self.eye_lids(side, u, eye_open)
        opening = inside & (v > v_upper) & (v < v_lower)
        out_relief = np.where(opening, self.eyeball_relief(side, u, v), skin)

        rgb, lab = albedo[iv, iu].copy(), label[iv, iu].copy()
        s = (u - cu) / idt.eye_size[0]
        sclera = SCLERA * (1.0 - 0.12 * _smoothstep(0.6, 1.0, np.abs(s)))[..., None]
        r_iris = np.hypot(u - cu, v - cv - 0.002)
        iris = np.asarray(idt.iris) * (0.75 + 0.35 * np.clip(r_iris / 0.022, 0, 1))[..., None]
        iris = np.where((r_iris < 0.009)[..., None], 0.03, iris)
        iris = np.where((r_iris > 0.019)[..., None], iris * 0.55, iris)
        iris = np.where((np.hypot(u - cu + 0.007, v - cv + 0.007) < 0.0032)[..., None], 0.95, iris)
        in_iris = r_iris < 0.022
        eye_rgb = np.where(in_iris[..., None], iris, sclera)
        rgb = np.where(opening[..., None], eye_rgb, rgb)
        lab = np.where(opening, np.where(in_iris, IRIS, EYE), lab)
        # Lash lines along the lid edges (visible when closed too) and the upper-lid crease.
        upper_lash = inside & ~opening & (v <= v_upper) & (v > v_upper - 0.0045 - 0.002 * (1 - np.abs(s)))
        lower_lash = inside & ~opening & (v >= v_lower) & (v < v_lower + 0.0018)
        rgb = np.where(upper_lash[..., None], np.asarray(idt.hair) * 0.45, rgb)
        rgb = np.where(lower_lash[..., None], rgb * 0.72, rgb)
        crease_v = cv - (idt.eye_size[1] + 0.013) * np.clip(1.0 - s**2, 0.0, None) ** 0.6
        crease = (np.abs(s) < 1.05) & (np.abs(v - crease_v) < 0.002) & (v < v_upper - 0.004)
        rgb = np.where(crease[..., None], rgb * 0.8, rgb)
        relief[iv, iu], albedo[iv, iu], label[iv, iu] = out_relief, rgb, lab

    def _paint_mouth(self, state: FaceState, relief, albedo, label) -> None:
        idt = self.identity
        mv = idt.mouth_v
        iv, iu, u, v = self._patch(0.0, mv + 0.015, 0.15, 0.1)
        m = self.mouth_shape(state)
        c = self.mouth_contours(state, u)
        base = relief[iv, iu] + self.pucker_relief(state, u, v)
        in_outer = np.abs(u) < m["outer_w"]
        opening = (np.abs(u) < m["inner_w"]) & (v > c["inner_up"]) & (v < c["inner_down"])
        upper_lip = in_outer & (v >= c["outer_up"]) & (v <= np.maximum(c["inner_up"], mv)) & ~opening
        lower_lip = in_outer & (v <= c["outer_down"]) & (v >= np.minimum(c["inner_down"], mv)) & ~opening
        lips = upper_lip | lower_lip
        # Lips bulge across their width (zero at both edges) and more when rounded.
        across_up = np.clip((v - c["outer_up"]) / np.maximum(c["inner_up"] - c["outer_up"], 1e-4), 0, 1)
        across_down = np.clip(
            (c["outer_down"] - v) / np.maximum(c["outer_down"] - c["inner_down"], 1e-4), 0, 1
        )
        across = np.where(upper_lip, across_up, across_down)
        along = np.clip(1.0 - (u / m["outer_w"]) ** 2, 0.0, None) ** 0.6
        bulge = (0.010 + 0.016 * state.mouth_round) * along * np.sin(np.pi * across) ** 0.7
        out_relief = base + np.where(lips, bulge, 0.0)

        rgb, lab = albedo[iv, iu].copy(), label[iv, iu].copy()
        lip_rgb = np.asarray(idt.lips) * np.where(upper_lip, 0.9, 1.0)[..., None]
        lip_rgb = lip_rgb * (0.85 + 0.2 * np.sin(np.pi * across) ** 2)[..., None]
        rgb = np.where(lips[..., None], lip_rgb, rgb)
        lab = np.where(lips, LIPS, lab)
        closed_seam = (np.abs(u) < m["inner_w"]) & (np.abs(v - mv) < 0.0012 + m["open_up"])
        rgb = np.where((closed_seam & ~opening)[..., None], np.asarray(idt.lips) * 0.42, rgb)

        # Inside the opening: upper teeth (fixed to the skull), lower teeth (move with the jaw), tongue, cavity.
        teeth_w = 0.78 * (idt.mouth_half_width - 0.008)
        upper_teeth = opening & (np.abs(u) < teeth_w) & (v < mv - 0.002)
        lower_teeth = opening & (np.abs(u) < 0.85 * teeth_w) & (v > mv + m["open_down"] - 0.007)
        tongue = opening & ~lower_teeth & (np.abs(u) < 0.7 * m["inner_w"]) & (v > mv + 0.5 * m["open_down"])
        gaps = 0.88 + 0.12 * np.abs(np.cos(np.pi * u / 0.0105))
        depth = np.where(upper_teeth | lower_teeth, 0.012, np.where(tongue, 0.03, 0.045))
        inside_rgb = np.where(
            (upper_teeth | lower_teeth)[..., None],
            TEETH_RGB * gaps[..., None],
            np.where(tongue[..., None], TONGUE_RGB, CAVITY_RGB),
        )
        rgb = np.where(opening[..., None], inside_rgb, rgb)
        lab = np.where(opening, np.where(upper_teeth | lower_teeth, TEETH, MOUTH), lab)
        out_relief = np.where(opening, base - depth, out_relief)
        out_relief = np.where(closed_seam & ~opening & ~lips, out_relief - 0.003, out_relief)
        relief[iv, iu], albedo[iv, iu], label[iv, iu] = out_relief, rgb, lab

    # -- landmarks ---------------------------------------------------------------------------

    def landmarks_uv(self, state: FaceState) -> np.ndarray:
        """``[68, 2]`` face coordinates of the iBUG 68 landmarks for one expression."""
        idt = self.identity
        a, b, _ = idt.radii
        pts = np.zeros((68, 2))
        # Jaw 0-16: from the image-left temple round the chin to the image-right temple.
        phi = np.linspace(-0.1, np.pi + 0.1, 17)
        pts[0:17] = np.stack([-0.9 * a * np.cos(phi), 0.03 + 0.86 * b * np.sin(phi)], axis=-1)
        # Brows 17-21 (image left) and 22-26 (image right), each left to right.
        for side, first in ((-1, 17), (1, 22)):
            u = side * idt.eye_spacing + 0.075 * np.linspace(-0.9, 0.9, 5)
            pts[first : first + 5] = np.stack([u, self.brow_curve(side, u)], axis=-1)
        # Nose: ridge 27-30 from the root to the tip, base 31-35 left to right.
        tip_v, _, tip_w = idt.nose
        pts[27:31] = np.stack([np.zeros(4), np.linspace(idt.eye_v - 0.005, tip_v, 4)], axis=-1)
        base_u = np.linspace(-0.9 * tip_w, 0.9 * tip_w, 5)
        pts[31:36] = np.stack([base_u, tip_v + 0.03 - 0.008 * (1 - (base_u / tip_w) ** 2)], axis=-1)
        # Eyes 36-41 (image left) and 42-47: left corner, upper lid x2, right corner, lower lid x2.
        half_w = idt.eye_size[0]
        for side, first in ((-1, 36), (1, 42)):
            cu = side * idt.eye_spacing
            u = cu + half_w * np.array([-1.0, -1 / 3, 1 / 3, 1.0, 1 / 3, -1 / 3])
            v_upper, v_lower, _ = self.eye_lids(side, u, state.eye_open)
            v = np.where(np.arange(6) < 3, v_upper, v_lower)
            v[[0, 3]] = idt.eye_v
            pts[first : first + 6] = np.stack([u, v], axis=-1)
        # Lips: outer 48-59 (48 left corner, 49-53 upper, 54 right corner, 55-59 lower right to left),
        # inner 60-67 (60 left corner, 61-63 upper, 64 right corner, 65-67 lower right to left).
        m = self.mouth_shape(state)
        mv = idt.mouth_v
        u = m["outer_w"] * np.array([-2, -1, 0, 1, 2]) / 3
        c = self.mouth_contours(state, u)
        pts[48] = (-m["outer_w"], mv)
        pts[49:54] = np.stack([u, c["outer_up"]], axis=-1)
        pts[54] = (m["outer_w"], mv)
        pts[55:60] = np.stack([u[::-1], c["outer_down"][::-1]], axis=-1)
        u = m["inner_w"] * np.array([-1, 0, 1]) / 2
        c = self.mouth_contours(state, u)
        pts[60] = (-m["inner_w"], mv)
        pts[61:64] = np.stack([u, c["inner_up"]], axis=-1)
        pts[64] = (m["inner_w"], mv)
        pts[65:68] = np.stack([u[::-1], c["inner_down"][::-1]], axis=-1)
        return pts

    def landmarks_3d(self, state: FaceState) -> np.ndarray:
        """``[68, 3]`` landmarks on the skin surface in head space (pose removed)."""
        uv = self.landmarks_uv(state)
        u, v = uv[:, 0], uv[:, 1]
        z = skull_z(self.identity, u, v) - self.skin_relief(state, u, v)
        return np.concatenate([uv, z[:, None]], axis=-1)


class FaceTextures:
    """One frame's face textures, with what the ray caster needs: front depth, its slopes, occlusion."""

    def __init__(self, model: FaceModel, relief: np.ndarray, albedo: np.ndarray, label: np.ndarray) -> None:
        self.model, self.relief, self.albedo, self.label = model, relief, albedo, label
        texel = model.texel
        self.depth = (model.skull - relief).astype(np.float32)  # z of the front surface
        dz_dv, dz_du = np.gradient(self.depth, texel)
        # Crevices (lower than their surroundings) receive less light: a height-field ambient occlusion.
        size = max(3, int(round(0.025 / texel)) | 1)
        concavity = np.clip(ndimage.uniform_filter(relief, size=size, mode="nearest") - relief, 0.0, None)
        occlusion = np.exp(-22.0 * concavity)
        self.march_near, self.march_far = model.march_near, model.march_far
        # Per texel: depth, slopes, occlusion, albedo; gathered together by bilinear lookups.
        self.table = np.concatenate(
            [np.stack([self.depth, dz_du, dz_dv, occlusion], axis=-1), albedo], axis=-1
        ).astype(np.float32)
        self.inside = model.inside

    def _corners(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        u0, _, v0, _ = FACE_BOX
        h, w = self.depth.shape
        fx = np.clip((x - u0) / self.model.texel, 0.0, w - 1.001)
        fy = np.clip((y - v0) / self.model.texel, 0.0, h - 1.001)
        ix, iy = fx.astype(np.int64), fy.astype(np.int64)
        return ix, iy, (fx - ix).astype(np.float32), (fy - iy).astype(np.float32)

    def march_bounds(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """How far in front of / behind the skull the face surface can be near ``(x, y)``."""
        ix, iy, wx, wy = self._corners(x, y)
        i = (iy + (wy > 0.5)) * self.depth.shape[1] + ix + (wx > 0.5)
        return self.march_near.reshape(-1)[i], self.march_far.reshape(-1)[i]

    def front_depth(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Bilinear ``z`` of the face surface above points ``(x, y)`` (clamped to the box)."""
        ix, iy, wx, wy = self._corners(x, y)
        d, w = self.depth, self.depth.shape[1]
        flat = d.reshape(-1)
        i00 = iy * w + ix
        top = flat[i00] * (1 - wx) + flat[i00 + 1] * wx
        bottom = flat[i00 + w] * (1 - wx) + flat[i00 + w + 1] * wx
        return top * (1 - wy) + bottom * wy

    def sample(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bilinear ``[N, 7]`` (depth, dz/du, dz/dv, occlusion, r, g, b) and nearest material at ``(x, y)``."""
        ix, iy, wx, wy = self._corners(x, y)
        w = self.depth.shape[1]
        table = self.table.reshape(-1, self.table.shape[-1])
        i00 = iy * w + ix
        wx, wy = wx[:, None], wy[:, None]
        values = (table[i00] * (1 - wx) + table[i00 + 1] * wx) * (1 - wy) + (
            table[i00 + w] * (1 - wx) + table[i00 + w + 1] * wx
        ) * wy
        nearest = (iy + (wy[:, 0] > 0.5)) * w + ix + (wx[:, 0] > 0.5)
        return values, self.label.reshape(-1)[nearest]
