"""Typed results: pydantic models mirroring the server's response bodies (docs/api.md).

Unknown fields are ignored, so a newer server with extra fields still parses.
"""

from __future__ import annotations

import ast
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator

from clients.wire import SensorKind


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class InputSpec(Body):
    sensor: SensorKind
    dt_us: int
    channels: int | None = None
    downsample: int = 1
    width: int | None = None
    height: int | None = None
    pool: int = 1
    binarize: bool = True


class ModelSummary(Body):
    name: str
    version: str
    description: str
    input: InputSpec
    labels: list[str]


class ModelDetail(ModelSummary):
    architecture: dict[str, Any]
    metrics: dict[str, Any]
    provenance: dict[str, Any]
    event_fields: list[str]
    # np.dtype([tuple(f) for f in wire_dtype]); servers before 2026-12-05 sent the pairs'
    # Python repr, which is read as the pairs too
    wire_dtype: list[tuple[str, str]]

    @field_validator("wire_dtype", mode="before")
    @classmethod
    def _pairs(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError) as exc:
            raise ValueError(f"not a dtype's (name, type) pairs: {value!r}") from exc


class LayerStats(Body):
    spikes: list[int]
    firing_rate: list[float]


class SessionInfo(Body):
    id: str
    model: str
    version: str
    late: Literal["reject", "drop"]
    t0_us: int | None
    bins: int
    last_t_us: int
    pending_events: int
    events_accepted: int
    events_dropped: int
    seq: int
    probabilities: list[float]
    label: str | None  # null before the first bin: no decision yet
    totals: LayerStats
    synops: int


class SessionCreated(SessionInfo):
    token: str


class TopK(Body):
    label: str
    index: int
    probability: float


class Pair(Body):
    batch: int
    total: int


class PerLayer(Body):
    batch: list[float]
    total: list[float]


class SpikeCounts(Body):
    batch: list[int]
    total: list[int]


class EventCounts(Body):
    accepted: int
    dropped: int
    total_accepted: int
    total_dropped: int
    pending: int


class Raster(Body):
    layer: int
    bin: list[int]
    neuron: list[int]


class EventsResult(Body):
    """The answer to a batch of events (or a whole recording)."""

    model: str
    version: str
    session: str | None
    seq: int | None
    probabilities: list[float]
    label: str | None  # null before the first bin: no decision yet
    top_k: list[TopK]
    bins: Pair
    spikes: SpikeCounts
    firing_rate: PerLayer
    synops: Pair
    events: EventCounts
    last_t_us: int
    server_time_ms: float
    rasters: list[Raster] | None = None
