"""Audio -> 3D landmarks: variational generator with a flow prior, regression baseline, sync expert,
post-net with a frame discriminator, smoothing and normalisation."""

from talker.motion.flow import CouplingFlow
from talker.motion.generator import MotionGenerator, RegressionMotion, VariationalMotion
from talker.motion.metrics import landmark_errors
from talker.motion.processing import frame_rows, gaussian_smooth
from talker.motion.sync import SyncExpert, sync_accuracy
from talker.motion.wavenet import WaveNet

__all__ = [
    "CouplingFlow",
    "MotionGenerator",
    "RegressionMotion",
    "SyncExpert",
    "VariationalMotion",
    "WaveNet",
    "frame_rows",
    "gaussian_smooth",
    "landmark_errors",
    "sync_accuracy",
]
