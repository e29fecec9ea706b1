"""Radiance fields: the contract (base.py), the head field, the torso field and per-frame inputs."""

from talker.fields.base import Field, FieldOutput
from talker.fields.head import HeadField
from talker.fields.inputs import EYE, EyeBlink, FrameInput, IndividualCode, eye_aspect_ratio, eye_ratio
from talker.fields.torso import (
    EulerPoseEncoding, PoseEncoding, TorsoField, TorsoOutput, composite_torso, pixel_coords, pose_vector,
)

__all__ = [
    "EYE",
    "EulerPoseEncoding",
    "EyeBlink",
    "Field",
    "FieldOutput",
    "FrameInput",
    "HeadField",
    "IndividualCode",
    "PoseEncoding",
    "TorsoField",
    "TorsoOutput",
    "composite_torso",
    "eye_aspect_ratio",
    "eye_ratio",
    "pixel_coords",
    "pose_vector",
]
