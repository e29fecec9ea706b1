"""Input encodings: multi-resolution hash grid (torch / tiny-cuda-nn backends), tri-plane, SH, frequency."""

from talker.encoders.base import Encoder, LevelEncoder
from talker.encoders.frequency import FrequencyEncoding
from talker.encoders.hashgrid import HashGrid
from talker.encoders.sh import SphericalHarmonics
from talker.encoders.triplane import TriPlaneHashGrid

__all__ = ["Encoder", "FrequencyEncoding", "HashGrid", "LevelEncoder", "SphericalHarmonics", "TriPlaneHashGrid"]
