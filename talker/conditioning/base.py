"""The conditioning contract: the one axis along which the ablation arms differ.

A :class:`ConditioningStrategy` turns the per-frame driving signal of a batch (a landmark window,
an audio-feature window, ...) into a :class:`Conditioning` that a field consumes. A strategy is
split into two injected parts:

- ``encode(inputs) -> h_cond``: the strategy's own encoder (hash-grid landmark encoder, AudioNet,
  ...), producing one conditional feature ``[cond_dim]`` per frame;
- a :class:`Fusion` that decides *how* ``h_cond`` enters the field: concatenated to the input
  features (GLO) or as a per-hidden-layer affine transform (M-AGLO).

Fields never ask which strategy they were given; they only read the Conditioning. Per-point
values a regulariser needs (RAD-NeRF's ambient coordinates) travel with the spatial features into
the field's output and come back through the renderer (:class:`RenderedRays`), never as state kept
in the strategy between the forward pass and the loss.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from torch import Tensor, nn


@dataclass
class Conditioning:
    """What a field receives for one frame.

    Attributes:
        vector: ``[vector_dim]`` global code concatenated to every point's input features, or None.
        scales, shifts: one ``[width_l]`` tensor per modulated hidden layer (``h * (1 + s) + t``),
            or empty.
        spatial: optional per-point features ``(x [N, 3], pos_features [N, P]) -> (features
            [N, spatial_dim], values)`` concatenated to the input features (audio-spatial
            decomposition), or None. ``values`` (``name -> [N, ...]``) are per-point values the
            strategy's regulariser reads back from the render (``RenderedRays.values``).
        warp: optional per-point deformation ``x [N, 3] -> (x_canonical [N, 3], values)`` that the
            field applies before anything else reads the point (LokiTalk's cascaded deformation
            fields: observation space -> one canonical space), or None. ``values`` travel back from
            the render as ``spatial``'s do.
    """

    vector: Tensor | None = None
    scales: Sequence[Tensor] = field(default_factory=tuple)
    shifts: Sequence[Tensor] = field(default_factory=tuple)
    spatial: Callable[[Tensor, Tensor], tuple[Tensor, dict[str, Tensor]]] | None = None
    warp: Callable[[Tensor], tuple[Tensor, dict[str, Tensor]]] | None = None


@dataclass
class RenderedRays:
    """What a training render tells a regulariser, per ray and per marched sample.

    Per-sample tensors are ``[R, S]`` (padded; ``mask`` marks the samples the field evaluated):
    ``mask.nonzero()`` lists them in evaluation order, and :meth:`points` gathers a value in it.

    Attributes:
        mask: ``[R, S]`` samples the field evaluated.
        weights: ``[R, S]`` compositing weight of each sample in its ray.
        transmittance: ``[R, S]`` light reaching each sample (``T_i``; instant-NGP stops marching a
            ray once it falls below ``1e-4``).
        values: per-point values the field reported (``FieldOutput.extras``, e.g. the ambient
            coordinates), ``name -> [R, S, ...]``, zero where not evaluated.
        rays: per-ray values of the batch, ``name -> [R, ...]`` (e.g. ``face``, ``lower_face``: the
            ray's pixel lies in that region of the frame; ``talker.data.landmarks.RAY_REGIONS``).
    """

    mask: Tensor
    weights: Tensor
    transmittance: Tensor
    values: Mapping[str, Tensor]
    rays: Mapping[str, Tensor]

    @property
    def num_rays(self) -> int:
        return self.mask.shape[0]

    def points(self, name: str) -> Tensor:
        """``[M, ...]``: per-sample value ``name`` (or ``weights`` / ``transmittance``) of the evaluated
        samples, in evaluation order."""
        grid = {"weights": self.weights, "transmittance": self.transmittance}.get(name)
        return (grid if grid is not None else self.values[name])[self.mask]

    def point_rays(self) -> Tensor:
        """``[M]``: the ray of each evaluated sample (index into the per-ray values)."""
        return self.mask.nonzero(as_tuple=True)[0]


@dataclass(frozen=True)
class ConditioningSpec:
    """Sizes a field must reserve for a strategy's output, known before the field is built."""

    vector_dim: int = 0
    spatial_dim: int = 0


class Fusion(nn.Module, ABC):
    """How a conditional feature ``h_cond [cond_dim]`` enters the field."""

    # Names of the per-point offsets ``[N, 3]`` its warp reports among its values (LokiTalk's
    # ``dx_face``, ``dx_torso``): the deformation heat maps composite their norms. Empty: no warp.
    deformations: tuple[str, ...] = ()

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

    def regularization(self, rays: RenderedRays) -> Tensor | None:
        """A loss term on a training render (its per-point values, weights, rays); default: none."""
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
           ``field(x, d, cond)``; ``strategy.regularization(rendered_rays)``
    """

    inputs: ClassVar[tuple[str, ...]] = ()
    # Whether the strategy reads the frame's eye ratio through ``talker.fields.inputs.eye_ratio`` (so the
    # condition key ``eye`` replaces it): the evaluator then scores the eye condition gap, swapping it alone.
    drives_eyes: ClassVar[bool] = False

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

    @property
    def deformations(self) -> tuple[str, ...]:
        """The per-point offsets its fusion's warp reports (``Fusion.deformations``); empty without a warp."""
        return tuple(self.fusion.deformations)

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

    def param_groups(self, lr_net: float, weight_decay: float, exclude: Collection[int]) -> list[dict[str, Any]]:
        """Optimiser groups of the strategy's own networks, leaving out the parameters in ``exclude``
        (ids of the hash tables, which train with the encoders). Default: one group ``conditioning``
        at ``lr`` when the strategy has a learning rate of its own, none otherwise (its networks then
        train in the model's ``net`` group at ``lr_net``)."""
        if self.lr is None:
            return []
        params = [p for p in self.parameters() if id(p) not in exclude]
        return [{"name": "conditioning", "params": params, "lr": self.lr, "weight_decay": weight_decay}]

    def prepare(self, conditions: Sequence[Mapping[str, Tensor]]) -> None:
        """Data-dependent set-up from the inputs of every training frame (e.g. normalisation
        statistics), called at fit start; state kept here must live in buffers so that a resumed
        run has it. Default: nothing."""

    def begin_fine_tuning(self, condition: Mapping[str, Tensor]) -> None:
        """Called once when a run starts from another run's weights (``init_from``), before the
        optimiser is built, with the inputs of the new data's first training frame (LokiTalk's ID
        encoder reads the new person there); default: nothing."""

    def on_train_step(self, paper_step: float) -> None:
        """Called before every optimisation step with the step in the paper's count (annealing,
        ramps); default: the fusion's."""
        self.fusion.on_train_step(paper_step)

    def regularization(self, rays: RenderedRays) -> Tensor | None:
        """An extra loss term of a training render (e.g. the ambient regulariser); default: the fusion's."""
        return self.fusion.regularization(rays)
