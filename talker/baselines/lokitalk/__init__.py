"""LokiTalk (Li et al. 2024, "LokiTalk: Learning Fine-Grained and Generalizable Correspondences"), its
region-specific deformation fields and its ID-aware knowledge transfer (docs/lokitalk.md).

Its own parts; everything else (canonical head field, stages, torso field, rendering, evaluator) is shared:

- :class:`RegionSignals`: the driving signals of a frame (landmark code, eye aspect ratio, head pose),
  a conditioning strategy;
- :class:`CascadedDeformation`: its fusion, the face and torso deformation fields with signal-region
  cross-attention, returning a warp of the field's points and regularised by eq. 7-9;
- :class:`UnifiedDeformation`: Table 2's O+D, one deformation field of all signals without the split;
- :class:`IdAwareSignals`, :class:`IdAwareDeformation`, :class:`IdEncoder`: ID-aware knowledge transfer
  (Sec. 3.3), an ID encoder read by the deformation fields and the canonical field, for multi-identity
  pre-training and fine-tuning on a new person;
- the region losses live with talker's losses (``talker.losses.regions``: eq. 6-9).
"""

from talker.baselines.lokitalk.deformation import (
    CascadedDeformation,
    DeformationMLP,
    RegionSignals,
    SignalAttention,
    UnifiedDeformation,
)
from talker.baselines.lokitalk.transfer import IdAwareDeformation, IdAwareSignals, IdEncoder

__all__ = [
    "CascadedDeformation", "DeformationMLP", "IdAwareDeformation", "IdAwareSignals", "IdEncoder", "RegionSignals",
    "SignalAttention", "UnifiedDeformation",
]
