"""What a network expects as input and how it is shaped: the input spec and hyper-parameters.

``InputSpec`` is part of the model card (pydantic, validated on load); ``ModelConfig`` and
``TrainConfig`` are frozen dataclasses saved with every checkpoint and passed to every pure
model function as a static argument.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from model.errors import InputError
from model.events import SensorKind

Discretization = Literal["dirac", "zoh", "bilinear"]
ScanMethod = Literal["sequential", "associative"]


class InputSpec(BaseModel):
    """How events become the network's input bins.

    cochlea: ``channels`` input channels, pooled by ``downsample`` (integer factor) into
    ``channels // downsample`` features. dvs: a ``width`` x ``height`` pixel grid with two
    polarities, pooled by ``pool`` x ``pool`` into ``2 * (width // pool) * (height // pool)``
    features, laid out as (polarity, y, x). Events are binned into ``dt_us``-wide bins; a bin
    holds 1 where any event fell (``binarize``) or the event count, at most 255.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    sensor: SensorKind
    dt_us: int = Field(gt=0, description="Time-bin width in microseconds.")
    channels: int | None = Field(default=None, gt=0, description="Cochlea channels.")
    downsample: int = Field(default=1, gt=0, description="Cochlea channel pooling factor.")
    width: int | None = Field(default=None, gt=0, description="DVS sensor width (pixels).")
    height: int | None = Field(default=None, gt=0, description="DVS sensor height (pixels).")
    pool: int = Field(default=1, gt=0, description="DVS spatial pooling factor.")
    binarize: bool = Field(default=True,
                           description="1 per active bin, else event counts (at most 255).")

    @model_validator(mode="after")
    def _sizes_match_sensor(self) -> InputSpec:
        if self.sensor == "cochlea":
            if self.channels is None or self.width is not None or self.height is not None:
                raise ValueError("a cochlea input spec needs `channels` and no width/height")
            if self.channels % self.downsample:
                raise ValueError(
                    f"channels={self.channels} is not divisible by downsample={self.downsample}"
                )
        else:
            if self.width is None or self.height is None or self.channels is not None:
                raise ValueError("a dvs input spec needs `width` and `height` and no channels")
            if self.width % self.pool or self.height % self.pool:
                raise ValueError(
                    f"{self.width}x{self.height} is not divisible by pool={self.pool}"
                )
        return self

    @property
    def features(self) -> int:
        """Number of input features per time bin."""
        if self.sensor == "cochlea":
            assert self.channels is not None
            return self.channels // self.downsample
        assert self.width is not None and self.height is not None
        return 2 * (self.width // self.pool) * (self.height // self.pool)

    def cochlea_channels(self) -> int:
        """The channels to encode audio with for this input; InputError for a DVS input."""
        if self.sensor != "cochlea" or self.channels is None:  # (None only for DVS)
            raise InputError(f"takes {self.sensor} events, not cochlea spikes from audio")
        return self.channels


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """S5-RF architecture (Huber et al. 2025).

    Each layer has ``neurons`` RF neurons whose eigenvalues are ``blocks`` copies of the
    HiPPO-LegS DPLR spectrum of size ``neurons // blocks``.
    """

    n_in: int
    n_classes: int
    neurons: tuple[int, ...] = (128, 128)
    blocks: int = 32
    eta_min: float = 0.004
    eta_max: float = 0.1
    discretization: Discretization = "dirac"
    keep_imag: bool = True
    skip: bool = True
    dropout: float = 0.1

    def __post_init__(self) -> None:
        sizes = {"n_in": self.n_in, "n_classes": self.n_classes, "blocks": self.blocks}
        if bad := {k: v for k, v in sizes.items() if v < 1}:
            raise ValueError(f"{bad} must be at least 1")
        if not self.neurons or min(self.neurons) < 1:
            raise ValueError(f"neurons {list(self.neurons)}: at least one layer, each of at "
                             "least 1 neuron")
        for n in self.neurons:
            if n % self.blocks:
                raise ValueError(f"{n} neurons cannot be split into {self.blocks} blocks")

    @property
    def n_layers(self) -> int:
        return len(self.neurons)

    def fan_out(self) -> tuple[int, ...]:
        """Outgoing connections per input feature and per neuron of each layer (SynOps)."""
        return (*self.neurons, self.n_classes)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimiser and augmentation settings (the paper's, per preset)."""

    batch_size: int = 32
    epochs: int = 20
    lr: float = 0.004
    lr_ssm: float = 0.002
    weight_decay: float = 1e-4
    cutmix: bool = False
    random_shift: bool = True
    seed: int = 42
    # Recordings cut after this many bins, in training and in every evaluation of the model
    # (None: whole recordings).
    max_bins: int | None = None


@dataclasses.dataclass(frozen=True)
class Preset:
    model: dict[str, object]
    train: TrainConfig


PRESETS: dict[str, Preset] = {
    # run_shd.sh of the reference code: 2 x 128 neurons, 32 blocks.
    "shd": Preset(
        model=dict(neurons=(128, 128), blocks=32, dropout=0.1),
        train=TrainConfig(batch_size=32, epochs=20, lr=0.004, lr_ssm=0.002, random_shift=True),
    ),
    # run_ssc.sh: 4 x 512 neurons, 16 blocks, CutMix.
    "ssc": Preset(
        model=dict(neurons=(512, 512, 512, 512), blocks=16, dropout=0.3),
        train=TrainConfig(
            batch_size=128, epochs=80, lr=0.004, lr_ssm=0.004, cutmix=True, random_shift=True
        ),
    ),
    # Small network for tests and quick experiments.
    "tiny": Preset(
        model=dict(neurons=(32, 32), blocks=8, dropout=0.0),
        train=TrainConfig(batch_size=16, epochs=10, lr=0.01, lr_ssm=0.005, random_shift=False),
    ),
}


def preset_config(name: str, n_in: int, n_classes: int, **overrides: object) -> ModelConfig:
    """The ModelConfig of a named preset for the given input and class count."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    kwargs = {**PRESETS[name].model, **overrides}
    return ModelConfig(n_in=n_in, n_classes=n_classes, **kwargs)  # type: ignore[arg-type]
