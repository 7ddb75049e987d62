"""Pydantic models of every request and response body (they are the OpenAPI schema)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)
from pydantic_core import PydanticCustomError

from model.binning import MAX_T_US, LatePolicy
from model.samples import Sample
from model.spec import InputSpec

Micros = Annotated[int, Field(ge=0, le=MAX_T_US)]
TopKCount = Annotated[int, Field(ge=1, le=1000, description="Classes listed in a result, most "
                                                               "probable first.")]
DECISION = "The most probable label; null before the first bin closes (uniform probabilities)."


def _one_error(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """One message for the union, not one per member tagged with pydantic's names for them."""
    try:
        return handler(value)
    except ValidationError as exc:
        raise PydanticCustomError(
            "t0", f"must be an integer from 0 to {MAX_T_US} (µs) or \"first_event\"") from exc


T0 = Annotated[Micros | Literal["first_event"], WrapValidator(_one_error)]


def origin_us(t0_us: T0) -> int | None:
    """A stream's bin origin for the binner: None until the first event for "first_event"."""
    return None if t0_us == "first_event" else int(t0_us)


class Strict(BaseModel):
    """Options: unknown fields refused. Their JSON values are checked strictly too
    (``JsonOnly``, or ``model_validate(..., strict=True)``): ``"flush": "yes"`` or ``"seq": "3"``
    is a mistake to name, not to guess at; only query parameters, text by nature, convert."""

    model_config = ConfigDict(extra="forbid")


class JsonOnly(Strict):
    """A body that only ever comes as JSON: strict throughout."""

    model_config = ConfigDict(extra="forbid", strict=True)


# -- models -----------------------------------------------------------------------------------
class ModelSummary(BaseModel):
    name: str
    version: str = Field(description="12 hex digits naming the weights, architecture "
                         "and input spec; sessions move only between equal versions.")
    description: str
    input: InputSpec
    labels: list[str]


class ModelDetail(ModelSummary):
    architecture: dict[str, Any]
    metrics: dict[str, Any] = Field(description="Measured metrics and the commands behind them.")
    provenance: dict[str, Any]
    event_fields: list[str] = Field(description="Columns of an event batch for this sensor.")
    wire_dtype: list[tuple[str, str]] = Field(
        description="The binary wire format as numpy's [name, type] pairs: "
                    "np.dtype([tuple(f) for f in wire_dtype]) rebuilds it.")


# -- sessions ---------------------------------------------------------------------------------
class SessionCreate(JsonOnly):
    model: str
    t0_us: T0 = Field(default=0, description="Bin origin (µs), or the first event's time.")
    late: LatePolicy | None = Field(default=None,
                                    description="Events in closed bins: 422, or drop and count.")


class SessionReset(JsonOnly):
    t0_us: T0 | None = Field(default=None,
                             description="The origin to start again from (µs), or the next "
                                         "event's time; default: the session's own.")


class LayerStats(BaseModel):
    spikes: list[int] = Field(description="Spikes per layer.")
    firing_rate: list[float] = Field(description="Spikes / (neurons × bins), per layer.")


class SessionInfo(BaseModel):
    id: str
    model: str
    version: str
    late: LatePolicy
    t0_us: int | None = Field(description="Bin origin; null until the first event "
                                          "when the origin is the first event.")
    bins: int = Field(description="Bins processed so far.")
    last_t_us: int = Field(description="Latest event timestamp; -1 before any event.")
    pending_events: int = Field(description="Events waiting in still-open bins.")
    events_accepted: int
    events_dropped: int
    seq: int = Field(description="Last client sequence number applied; -1 if none.")
    probabilities: list[float]
    label: str | None = Field(description=DECISION)
    totals: LayerStats
    synops: int
    idle_s: float = Field(description="Seconds between the session's previous request and "
                                      "this one.")
    expires_in_s: float = Field(description="Seconds until it expires if nothing else comes "
                                            "(every request, this one too, restarts the TTL).")


class SessionCreated(SessionInfo):
    token: str = Field(description="Send it as X-Session-Token on every later request.")


# -- events -----------------------------------------------------------------------------------
class ChunkOptions(Strict):
    """Options of one batch of a session's events (JSON fields or query parameters)."""

    until_us: Micros | None = Field(default=None,
                                 description="Watermark: close every bin ending at or before.")
    flush: bool = Field(default=False, description="Close the bin holding the latest event.")
    include_spikes: bool = Field(default=False, description="Return per-bin spike rasters.")
    seq: int | None = Field(default=None, ge=0, le=MAX_T_US,
                            description="Client sequence number; must increase (replays 409).")
    top_k: TopKCount = 5
    reset: T0 | None = Field(default=None,
                             description="Start again before this batch (zero state, empty "
                                         "buffer and counters; seq goes on) from this origin "
                                         "(µs), or the batch's first event: a new utterance.")


class InferOptions(Strict):
    """Options of a whole-recording inference (JSON fields or query parameters)."""

    t0_us: T0 = 0
    include_spikes: bool = False
    top_k: TopKCount = 5


class EventColumns(BaseModel):
    """Columnar events: ``t`` (µs, sorted) with ``channel`` (cochlea) or ``x, y, p`` (DVS)."""

    t: list[int] = Field(default_factory=list)
    channel: list[int] | None = None
    x: list[int] | None = None
    y: list[int] | None = None
    p: list[int] | None = None


class ChunkBody(ChunkOptions, EventColumns):
    """A JSON batch of a session's events."""


class InferBody(InferOptions, EventColumns):
    """A JSON recording for /infer."""


class TopK(BaseModel):
    label: str
    index: int
    probability: float


class Pair(BaseModel):
    batch: int
    total: int


class PerLayer(BaseModel):
    batch: list[float]
    total: list[float]


class SpikeCounts(BaseModel):
    batch: list[int]
    total: list[int]


class EventCounts(BaseModel):
    accepted: int
    dropped: int
    total_accepted: int
    total_dropped: int
    pending: int = Field(description="Accepted events still in open bins.")


class Raster(BaseModel):
    """Spikes of one layer in this batch as (bin, neuron) pairs; bins count from the origin."""

    layer: int
    bin: list[int]
    neuron: list[int]


class EventsResult(BaseModel):
    """The network's answer to a batch of events (or a whole recording)."""

    model: str
    version: str
    session: str | None
    seq: int | None
    probabilities: list[float] = Field(description="Aligned with the model's labels.")
    label: str | None = Field(description=DECISION)
    top_k: list[TopK]
    bins: Pair = Field(description="Bins processed by this batch and in total.")
    spikes: SpikeCounts = Field(description="Spike counts per layer.")
    firing_rate: PerLayer = Field(description="Spikes / (neurons × bins), per layer.")
    synops: Pair = Field(description="Synaptic operations: Σ spikes × fan-out, with the "
                                     "input spikes × first-layer fan-out.")
    events: EventCounts
    last_t_us: int
    server_time_ms: float
    rasters: list[Raster] | None = None


# -- websocket --------------------------------------------------------------------------------
class StreamOpen(JsonOnly):
    """First message of a /v1/stream connection: open (``model``) or resume (``session``)."""

    model: str | None = None
    session: str | None = None
    token: str | None = None
    t0_us: T0 = 0
    late: LatePolicy | None = None
    include_spikes: bool = False
    result_every: int = Field(default=1, ge=1,
                              description="Push a result every N frames (and on flush).")
    top_k: TopKCount = 5
    frame_header: bool = Field(default=False,
                               description="Binary frames start with a 25-byte header: seq, "
                                           "until_us and a reset's origin (int64 LE, -1: none "
                                           "or the first event), then flags (uint8, 1: flush, "
                                           "2: reset), so they carry what a JSON frame can.")


class HealthStatus(BaseModel):
    status: str
    models: list[str] = Field(default_factory=list)
    detail: str | None = None


class ErrorBody(BaseModel):
    """Every error answer: what is wrong and how to fix it, plus any fields the error carries
    (a replayed batch's 409: ``last_seq`` and ``applied``)."""

    model_config = ConfigDict(extra="allow")

    detail: str


class ModelSamples(BaseModel):
    """One model's shipped sample recordings (GET /v1/samples)."""

    model: str
    samples: list[Sample]
