"""The conditioning contract: the one axis along which the ablation arms differ.

A :class:`ConditioningStrategy` turns the per-frame driving signal of a batch (a landmark window,
an audio-feature window, ...) into a :class:`Conditioning` that a field consumes. A strategy is
split into two injected parts:

- ``encode(inputs) -> h_cond``: the strategy's own encoder (hash-grid landmark encoder, AudioNet,
  ...), producing one conditional feature ``[cond_dim]`` per frame;
- a :class:`Fusion` that decides *how* ``h_cond`` enters the field: concatenated to the input
  features (GLO) or as a per-hidden-layer affine transform (M-AGLO).

Fields never ask which strategy they were given; they only read the Conditioning.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from torch import Tensor, nn


@dataclass
class Conditioning:
    """What a field receives for one frame.

    Attributes:
        vector: ``[vector_dim]`` global code concatenated to every point's input features, or None.
        scales, shifts: one ``[width_l]`` tensor per modulated hidden layer (``h * (1 + s) + t``),
            or empty.
        spatial: optional per-point features ``(x [N, 3], pos_features [N, P]) -> [N, spatial_dim]``
            concatenated to the input features (audio-spatial decomposition), or None.
    """

    vector: Tensor | None = None
    scales: Sequence[Tensor] = field(default_factory=tuple)
    shifts: Sequence[Tensor] = field(default_factory=tuple)
    spatial: Callable[[Tensor, Tensor], Tensor] | None = None


@dataclass
class RenderedPoints:
    """What training knows about the points the last forward evaluated, in evaluation order.

    Attributes:
        weights: ``[M]`` compositing weight of each point in its ray.
        in_face: ``[M]`` whether the point's ray goes through the face box of the frame.
        num_rays: rays of the batch (per-ray losses are averaged over them).
    """

    weights: Tensor
    in_face: Tensor
    num_rays: int


@dataclass(frozen=True)
class ConditioningSpec:
    """Sizes a field must reserve for a strategy's output, known before the field is built."""

    vector_dim: int = 0
    spatial_dim: int = 0


class Fusion(nn.Module, ABC):
    """How a conditional feature ``h_cond [cond_dim]`` enters the field."""

    @abstractmethod
    def vector_dim(self, cond_dim: int) -> int:
        """Width of the vector this fusion concatenates to the field input (0 if none)."""

    def spatial_dim(self, cond_dim: int) -> int:
        """Width of the per-point features this fusion adds to the field input (0 if none)."""
        return 0

    @abstractmethod
    def build(self, cond_dim: int, modulation_widths: Sequence[int], position_dim: int = 0) -> None:
        """Create parameters once the field's modulatable hidden widths (and the width of its
        positional features, which a spatial fusion reads) are known."""

    @abstractmethod
    def forward(self, h_cond: Tensor) -> Conditioning:
        """``[cond_dim] -> Conditioning``."""

    def on_train_step(self, paper_step: float) -> None:
        """Called before every optimisation step with the step in the paper's count; default: nothing."""

    def regularization(self, points: RenderedPoints) -> Tensor | None:
        """A loss term on the last forward's intermediate values; default: none."""
        return None


class ConditioningStrategy(nn.Module, ABC):
    """Base class of the swappable conditioning strategies.

    Subclasses set ``inputs`` (the batch keys they read from ``batch["cond"]``), implement
    ``cond_dim`` and ``encode``, and may override the step hook or ``regularization``. ``lr`` (every
    strategy's keyword) gives the strategy's networks a learning rate of their own.

    Life cycle, driven by the LightningModule:
        1. ``strategy = Strategy(fusion=..., ...)`` (Hydra instantiates it from conditioning/*.yaml)
        2. ``field = Field(cond_spec=strategy.spec, ...)``
        3. ``strategy.bind(field.modulation_widths, field.position_dim)``
        4. at fit start: ``strategy.prepare(training_conditions)``
        5. per step: ``strategy.on_train_step(paper_step)``; ``cond = strategy(batch["cond"])``;
           ``field(x, d, cond)``; ``strategy.regularization(rendered_points)``
    """

    inputs: ClassVar[tuple[str, ...]] = ()

    def __init__(self, fusion: Fusion, lr: float | None = None) -> None:
        super().__init__()
        self.fusion = fusion
        # Learning rate of the strategy's networks (its hash tables train with the encoders');
        # None: the model's lr_net. RAD-NeRF's audio and ambient nets need their own (see audio_spatial).
        self.lr = lr
        self._bound = False

    @property
    @abstractmethod
    def cond_dim(self) -> int:
        """Width of ``h_cond`` produced by ``encode``."""

    @abstractmethod
    def encode(self, inputs: Mapping[str, Tensor]) -> Tensor:
        """Per-frame driving inputs (``batch["cond"]``) -> ``h_cond [cond_dim]``."""

    @property
    def spec(self) -> ConditioningSpec:
        return ConditioningSpec(
            vector_dim=self.fusion.vector_dim(self.cond_dim), spatial_dim=self.fusion.spatial_dim(self.cond_dim)
        )

    def bind(self, modulation_widths: Sequence[int], position_dim: int = 0) -> None:
        """Size the fusion to the field's hidden layers and positional features; called once, before training."""
        self.fusion.build(self.cond_dim, list(modulation_widths), position_dim)
        self._bound = True

    def forward(self, inputs: Mapping[str, Tensor]) -> Conditioning:
        if not self._bound:
            raise RuntimeError(f"{type(self).__name__}.bind(widths) must be called before use")
        missing = [key for key in self.inputs if key not in inputs]
        if missing:
            raise KeyError(
                f"{type(self).__name__} needs batch['cond'] keys {list(self.inputs)}, missing {missing}"
            )
        return self.fusion(self.encode(inputs))

    def prepare(self, conditions: Sequence[Mapping[str, Tensor]]) -> None:
        """Data-dependent set-up from the inputs of every training frame (e.g. normalisation
        statistics), called at fit start; state kept here must live in buffers so that a resumed
        run has it. Default: nothing."""

    def on_train_step(self, paper_step: float) -> None:
        """Called before every optimisation step with the step in the paper's count (annealing,
        ramps); default: the fusion's."""
        self.fusion.on_train_step(paper_step)

    def regularization(self, points: RenderedPoints) -> Tensor | None:
        """An extra loss term of the last forward (e.g. the ambient regulariser); default: the fusion's."""
        return self.fusion.regularization(points)
