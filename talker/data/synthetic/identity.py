"""Synthetic people: face shape, colours, hair, clothes, backdrop and voice of each identity.

Lengths are in *head units* (the skull is about 0.7 wide; 1 unit is roughly 22 cm). Colours are
linear RGB in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

RGB = tuple[float, float, float]


@dataclass(frozen=True)
class Voice:
    """Parameters of the built-in formant speech (see ``speech.babble``)."""

    f0: tuple[float, float] = (110.0, 160.0)  # pitch range, Hz
    formant_scale: float = 1.0  # vocal-tract length: >1 shorter (higher formants)
    syllable_seconds: tuple[float, float] = (0.10, 0.24)
    pause_probability: float = 0.12


VOICES: dict[str, Voice] = {
    "low": Voice(f0=(85.0, 135.0), formant_scale=0.92, syllable_seconds=(0.11, 0.26)),
    "mid": Voice(f0=(120.0, 190.0), formant_scale=1.0),
    "high": Voice(f0=(175.0, 260.0), formant_scale=1.12, syllable_seconds=(0.09, 0.22)),
    "fast": Voice(
        f0=(140.0, 220.0), formant_scale=1.06, syllable_seconds=(0.07, 0.16), pause_probability=0.06
    ),
}


@dataclass(frozen=True)
class Identity:
    """Appearance and voice of one synthetic person."""

    name: str
    # Skull: ellipsoid half-axes (x across, y down, z front-to-back).
    radii: tuple[float, float, float] = (0.34, 0.44, 0.38)
    # Face layout in face coordinates (u = x, v = y on the front of the skull).
    eye_spacing: float = 0.14  # |u| of each eye centre
    eye_v: float = -0.055
    eye_size: tuple[float, float, float] = (0.056, 0.024, 0.017)  # half-width, upper / lower lid height
    brow_v: float = -0.14
    nose: tuple[float, float, float] = (0.085, 0.10, 0.04)  # tip v, tip protrusion, half-width at the tip
    mouth_v: float = 0.205
    mouth_half_width: float = 0.082
    lip_thickness: tuple[float, float] = (0.02, 0.026)  # upper, lower
    # Colours.
    skin: RGB = (0.86, 0.66, 0.54)
    lips: RGB = (0.72, 0.36, 0.36)
    iris: RGB = (0.30, 0.20, 0.12)
    hair: RGB = (0.22, 0.14, 0.09)
    hair_style: str = "short"  # short | bob | buzz
    shirt: RGB = (0.20, 0.32, 0.55)
    shirt_pattern: str = "plain"  # plain | stripes | check
    background: str = "wall"  # wall | shelf | window | studio
    wall: RGB = (0.62, 0.66, 0.70)
    voice: str = "mid"


IDENTITIES: dict[str, Identity] = {
    "ada": Identity(name="ada", voice="high"),
    "bo": Identity(
        name="bo",
        radii=(0.36, 0.43, 0.39),
        eye_spacing=0.145,
        eye_size=(0.054, 0.022, 0.016),
        nose=(0.09, 0.09, 0.047),
        mouth_v=0.215,
        mouth_half_width=0.086,
        lip_thickness=(0.024, 0.029),
        skin=(0.55, 0.38, 0.28),
        lips=(0.45, 0.24, 0.23),
        iris=(0.12, 0.08, 0.05),
        hair=(0.06, 0.05, 0.05),
        hair_style="buzz",
        shirt=(0.58, 0.20, 0.17),
        shirt_pattern="check",
        background="shelf",
        wall=(0.70, 0.64, 0.55),
        voice="low",
    ),
    "cy": Identity(
        name="cy",
        radii=(0.33, 0.45, 0.37),
        eye_spacing=0.135,
        eye_v=-0.06,
        eye_size=(0.058, 0.026, 0.017),
        nose=(0.08, 0.085, 0.036),
        mouth_v=0.20,
        mouth_half_width=0.076,
        lip_thickness=(0.021, 0.027),
        skin=(0.80, 0.62, 0.47),
        lips=(0.70, 0.32, 0.38),
        iris=(0.22, 0.38, 0.28),
        hair=(0.55, 0.40, 0.20),
        hair_style="bob",
        shirt=(0.88, 0.86, 0.80),
        shirt_pattern="stripes",
        background="window",
        wall=(0.55, 0.60, 0.66),
        voice="mid",
    ),
    "dee": Identity(
        name="dee",
        radii=(0.35, 0.44, 0.38),
        eye_spacing=0.142,
        eye_size=(0.055, 0.023, 0.018),
        nose=(0.088, 0.095, 0.045),
        mouth_v=0.21,
        mouth_half_width=0.084,
        lip_thickness=(0.022, 0.028),
        skin=(0.36, 0.24, 0.18),
        lips=(0.32, 0.18, 0.17),
        iris=(0.08, 0.05, 0.04),
        hair=(0.04, 0.035, 0.035),
        hair_style="short",
        shirt=(0.30, 0.45, 0.30),
        shirt_pattern="plain",
        background="studio",
        wall=(0.38, 0.40, 0.46),
        voice="fast",
    ),
}
