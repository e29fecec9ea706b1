"""LokiTalk's ID-aware knowledge transfer (Sec. 3.3): an ID encoder that lets a head pre-trained on
several identities start a new person from one frame.

Pre-training (``data=multi_identity``): each step renders a frame of one identity, and the ID encoder
reads a random frame of the same video (the ``reference`` input, ``data.reference=random``). Its ID
embedding ``z`` reaches the head in the places the paper names:

======================================= =========================================================
paper                                   here (:class:`IdAwareDeformation`)
======================================= =========================================================
dynamic feature, concatenated with the  ``dynamic(z)`` joins both deformation MLPs' inputs
driving signals into the deformation
MLPs
hyper-network replacing the MLPs' last  ``hyper[f](z)``: an identity's change of the shared last
layer                                   layer of ``face`` and ``torso`` (zero at the start)
ID-aware canonical offset on a shared   ``offset(z)``: a 3D translation of the canonical point
canonical space
appearance and geometry features for    ``static(z)``: the canonical field's ``Conditioning.vector``
the colour and density decoders         (its sigma net; colour sees it through the geometry feature)
======================================= =========================================================

Fine-tuning on a new person (``init_from=<pre-trained run>``): ``begin_fine_tuning`` passes the first
training frame through the encoder once; that ``z`` becomes a learnable parameter (the paper's "ID
embeddings", at their own rate ``id_lr``) and the encoder is dropped. The paper turns the produced
last layers and offset into ordinary weights and codes; here they stay ``head(z)`` with the heads
trainable, which is the same family of functions (a head's bias is an ordinary last layer / offset,
its weight times the learnable ``z`` a learnable change of it) with one set of weights to load.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from talker.baselines.lokitalk.deformation import CascadedDeformation, LastLayer, RegionSignals
from talker.conditioning.base import Conditioning
from talker.encoders.hashgrid import HashGrid

IDENTITY = "identity"  # the part of h_cond that is the ID embedding z
REFERENCE = "reference"  # the condition key of the reference crop the ID encoder reads


class IdEncoder(nn.Module):
    """``[3, r, r]`` face crop in [0, 1] -> ID embedding ``[dim]``: four stride-2 convolutions, a global
    average and a linear layer (the paper does not describe its encoder)."""

    def __init__(self, dim: int = 32, width: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for out in (width // 2, width, width * 2, width * 2):
            layers += [nn.Conv2d(channels, out, 4, stride=2, padding=1), nn.ReLU()]
            channels = out
        self.convs = nn.Sequential(*layers)
        self.out = nn.Linear(channels, dim)

    def forward(self, crop: Tensor) -> Tensor:
        if crop.dim() != 3 or crop.shape[0] != 3:
            raise ValueError(f"IdEncoder expects a [3, r, r] reference crop, got {tuple(crop.shape)}")
        features = self.convs(crop.unsqueeze(0) * 2 - 1).mean(dim=(2, 3))
        return self.out(features)[0]


class IdAwareDeformation(CascadedDeformation):
    """:class:`CascadedDeformation` whose identity part of ``h_cond`` (``z``) adds a dynamic feature, a
    change of both MLPs' last layers (hyper-network), a canonical offset, and the canonical field's
    static feature (``Conditioning.vector``). All heads start at zero, so a new model is the plain
    cascade with the identity warp.

    Args:
        dynamic_dim: width of the dynamic feature both deformation MLPs read.
        static_dim: width of the static feature the canonical field reads.
        (the rest: :class:`CascadedDeformation`.)
    """

    extra_signals = (IDENTITY,)

    def __init__(self, grid: HashGrid, dynamic_dim: int = 16, static_dim: int = 16, **kwargs: Any) -> None:
        super().__init__(grid, **kwargs)
        self.identity_dim, self.static_dim = dynamic_dim, static_dim
        self.dynamic: nn.Linear | None = None
        self.hyper = nn.ModuleDict()
        self.offset: nn.Linear | None = None
        self.static: nn.Linear | None = None

    def vector_dim(self, cond_dim: int) -> int:
        return self.static_dim

    def build(self, cond_dim: int, modulation_widths: Sequence[int], position_dim: int = 0) -> None:
        super().build(cond_dim, modulation_widths, position_dim)
        assert self.face is not None and self.torso is not None
        z = self.signals[IDENTITY]
        self.dynamic = nn.Linear(z, self.identity_dim)
        out, hidden = self.face.last_shape
        # Zero: every identity starts at the shared last layers, and the warp at the identity.
        self.hyper = nn.ModuleDict({name: _zeros(nn.Linear(z, out * (hidden + 1), bias=False)) for name in ("face", "torso")})
        self.offset = _zeros(nn.Linear(z, 3))
        self.static = nn.Linear(z, self.static_dim)

    def last_layers(self, z: Tensor) -> dict[str, LastLayer]:
        """The face and torso MLPs' last layers for the identity ``z``: shared + the hyper-network's change."""
        layers = {}
        for name, mlp in (("face", self.face), ("torso", self.torso)):
            assert mlp is not None
            out, hidden = mlp.last_shape
            delta = self.hyper[name](z).view(out, hidden + 1)
            layers[name] = (mlp.last.weight + delta[:, :hidden], mlp.last.bias + delta[:, hidden])
        return layers

    def forward(self, h_cond: Tensor) -> Conditioning:
        assert self.dynamic is not None and self.offset is not None and self.static is not None
        signals = self.split(h_cond)
        z = signals[IDENTITY]
        last, dynamic, offset = self.last_layers(z), self.dynamic(z), self.offset(z)

        def warp(x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
            x, values = self.deform(x, signals, last, dynamic)
            return x + offset.to(x.dtype), values

        return Conditioning(warp=warp, vector=self.static(z))


class IdAwareSignals(RegionSignals):
    """LokiTalk's driving signals and the identity's embedding, ``h_cond = [F_a, F_e, F_h, z]``: ``z`` is
    the ID encoder's reading of ``inputs["reference"]`` (``[3, r, r]``, ``data.reference``) until
    :meth:`begin_fine_tuning`, then a learnable parameter.

    Args:
        fusion: factory of the :class:`IdAwareDeformation` (a Hydra partial), given ``grid``.
        encoder: the ID encoder (its ``out`` width is ``z``'s).
        id_lr: learning rate of ``z`` once it is a parameter (the paper's 1e-3 for ID embeddings).
        (the rest: :class:`RegionSignals`.)
    """

    inputs = ("landmarks", "pose", REFERENCE)

    def __init__(
        self, fusion: Callable[..., IdAwareDeformation], grid: HashGrid, encoder: IdEncoder, window: int = 5,
        num_landmarks: int = 68, code_dim: int = 64, lr: float | None = None, id_lr: float = 1e-3,
        standardise_eye: bool = False,
    ) -> None:
        self.id_dim = encoder.out.out_features  # before RegionSignals splits h_cond (signal_widths)
        super().__init__(fusion, grid, window, num_landmarks, code_dim, lr, standardise_eye)
        self.encoder: IdEncoder | None = encoder
        self.embedding: nn.Parameter | None = None  # z once fine-tuning has begun
        self.register_buffer("adopted", torch.tensor(False))  # z is the parameter, the encoder is gone
        self.id_lr = id_lr
        self._register_load_state_dict_pre_hook(self._drop_encoder_of_adopted)

    def signal_widths(self) -> dict[str, int]:
        return {**super().signal_widths(), IDENTITY: self.id_dim}

    def identity(self, inputs: Mapping[str, Tensor]) -> Tensor:
        """``z [id_dim]``: the learnt embedding once adopted, else the encoder's of the reference crop."""
        if self.embedding is not None:
            return self.embedding
        assert self.encoder is not None
        if REFERENCE not in inputs:
            raise KeyError(f"{type(self).__name__} reads a reference crop: set data.reference=first (or random)")
        return self.encoder(inputs[REFERENCE].to(self.encoder.out.weight))

    def encode(self, inputs: Mapping[str, Tensor]) -> Tensor:
        signals = super().encode(inputs)
        return torch.cat([signals, self.identity(inputs).to(signals)])

    @torch.no_grad()
    def begin_fine_tuning(self, condition: Mapping[str, Tensor]) -> None:
        """Start a new person from its first training frame: ``z`` = the encoder's reading of its
        reference crop, a parameter from now on; the encoder is dropped."""
        if self.embedding is not None:
            return
        self.embedding = nn.Parameter(self.identity(condition).detach().clone())
        self.adopted.fill_(True)
        self.encoder = None

    def param_groups(self, lr_net: float, weight_decay: float, exclude: Collection[int]) -> list[dict[str, Any]]:
        """``identity`` (``z``, once it is a parameter) at ``id_lr`` without weight decay; the rest as
        :class:`RegionSignals`' (the model's ``net`` group, or ``lr``)."""
        if self.embedding is None:
            return super().param_groups(lr_net, weight_decay, exclude)
        groups = super().param_groups(lr_net, weight_decay, {*exclude, id(self.embedding)})
        return [*groups, {"name": "identity", "params": [self.embedding], "lr": self.id_lr, "weight_decay": 0.0}]

    def _drop_encoder_of_adopted(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        """A fine-tuned head's checkpoint has ``z`` and no encoder: shape this one so before loading."""
        adopted = state_dict.get(prefix + "adopted")
        if adopted is not None and bool(adopted) and self.embedding is None:
            self.embedding = nn.Parameter(torch.empty(self.id_dim))
            self.encoder = None


def _zeros(layer: nn.Linear) -> nn.Linear:
    nn.init.zeros_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer
