"""ER-NeRF (Li et al., ICCV 2023, "Efficient Region-Aware Neural Radiance Fields"), as R2-Talker compares it.

Its own parts; everything else (audio code, stages, torso field, rendering, evaluator) is shared:

- :class:`ERNeRFField`: tri-plane hash encoding, eye attention gate, uncertainty head;
- :class:`RegionAttention`: the audio code's per-point channel attention (a conditioning fusion);
- :class:`UncertaintyWeightedMSE`: the head stage's photometric loss;
- :class:`AnchorPoseEncoding`: the torso's adaptive pose encoding.
"""

from talker.baselines.er_nerf.attention import RegionAttention
from talker.baselines.er_nerf.field import ERNeRFField
from talker.baselines.er_nerf.torso import AnchorPoseEncoding
from talker.baselines.er_nerf.uncertainty import UncertaintyWeightedMSE

__all__ = ["AnchorPoseEncoding", "ERNeRFField", "RegionAttention", "UncertaintyWeightedMSE"]
