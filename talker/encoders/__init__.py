"""Input encodings: multi-resolution hash grid, spherical harmonics, frequency encoding."""

from talker.encoders.frequency import FrequencyEncoding
from talker.encoders.hashgrid import HashGrid
from talker.encoders.sh import SphericalHarmonics

__all__ = ["FrequencyEncoding", "HashGrid", "SphericalHarmonics"]
