"""R2-Talker's structure-aware landmark encoder (Sec. 3.2, Fig. 4, Table 6)."""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from talker.conditioning.base import ConditioningStrategy, Fusion
from talker.encoders.hashgrid import HashGrid


class LandmarkHash(ConditioningStrategy):
    """Each 3D landmark of a window is looked up in one shared hash grid; encodings are concatenated.

    ``h_cond = concat_j H(p_j)`` over the ``window x num_landmarks`` points (eq. 7); the fusion's
    MLP / FC branches turn it into the concatenated code (GLO) or per-layer scale and shift (M-AGLO),
    so ``cond_dim = window * num_landmarks * num_levels * level_dim`` (Table 6's FC input).

    Reads ``inputs["landmarks"]``: ``[window, num_landmarks, 3]`` canonical (pose-free) landmarks
    in ``[-grid.bound, grid.bound]``.
    """

    inputs = ("landmarks",)

    def __init__(
        self, fusion: Fusion, grid: HashGrid, window: int = 5, num_landmarks: int = 68, lr: float | None = None
    ) -> None:
        super().__init__(fusion, lr)
        if grid.input_dim != 3:
            raise ValueError(f"LandmarkHash needs a 3D hash grid, got input_dim={grid.input_dim}")
        self.grid = grid
        self.window = window
        self.num_landmarks = num_landmarks

    @property
    def cond_dim(self) -> int:
        return self.window * self.num_landmarks * self.grid.output_dim

    def encode(self, inputs: Mapping[str, Tensor]) -> Tensor:
        landmarks = inputs["landmarks"]
        expected = (self.window, self.num_landmarks, 3)
        if tuple(landmarks.shape) != expected:
            raise ValueError(f"LandmarkHash expects landmarks of shape {expected}, got {tuple(landmarks.shape)}")
        return self.grid(landmarks.reshape(-1, 3)).reshape(-1)
