"""The server's one settings object, read from ``S5RF_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from model.binning import LatePolicy


class Settings(BaseSettings):
    """Every knob of one server process; the CLI's flags override the environment."""

    # "null" in the environment means None (gc_thresholds, compilation_cache).
    # No inf or NaN anywhere: an infinite batcher wait or TTL passed validation and then
    # stalled every batch or overflowed the shared store's expiry.
    model_config = SettingsConfigDict(env_prefix="S5RF_", frozen=True, env_parse_none_str="null",
                                      allow_inf_nan=False)

    host: str = Field(default="127.0.0.1", min_length=1,
                      description="Bind address (an empty one would bind every interface).")
    port: int = Field(default=8000, ge=0, le=65535, description="Port (0: any free one).")
    checkpoints: Path = Field(default=Path("checkpoints"),
                              description="Directory holding one checkpoint per sub-directory.")
    samples: Path = Field(default=Path("samples"),
                          description="Sample recordings: NAME/index.json and .npy files.")
    # At most a year: the shared store's expiry is in ms, and Redis refuses one past 2**63.
    session_ttl_s: float = Field(default=600.0, ge=0.001, le=365 * 86_400,
                                 description="Idle time before expiry.")
    expiry_interval_s: float = Field(default=5.0, gt=0, description="How often expiry runs.")
    max_sessions: int = Field(default=256, gt=0, description="Live sessions, all models.")
    max_concurrent_infer: int = Field(default=8, gt=0, description="/infer calls per model.")
    retry_after_s: int = Field(default=5, ge=1, description="Retry-After when at a cap.")
    max_body_bytes: int = Field(default=16 << 20, gt=0,
                                description="Largest request body or WS frame (413 / 1009).")
    max_events_per_request: int = Field(default=1_000_000, gt=0,
                                        description="Events one batch or frame may carry.")
    max_bins_per_request: int = Field(default=20_000, gt=0,
                                      description="Bins one request may close (time-jump guard).")
    batch_max_wait_ms: float = Field(default=0.5, ge=0, le=1000,
                                     description="How long the batcher waits for more chunks.")
    # Fine steps where batches usually fall: a batch pads to the next bucket, and on a CPU the
    # step's cost grows with the padded size (bench.server_load measures the trade-off).
    session_buckets: tuple[int, ...] = Field(
        default=(1, 4, 8, 16, 32, 128),
        description="Sessions per engine step, padded up to the next of these (compiled shapes).")
    bin_buckets: tuple[int, ...] = Field(
        default=(1, 4, 8, 16, 32, 64),
        description="Bins per engine step, padded up to the next of these (compiled shapes).")
    max_bins_per_step: int = Field(
        default=256, gt=0, description="Bins of one chunk per engine step: a longer one (an "
                                       "/infer recording) is stepped in pieces, so other "
                                       "sessions' chunks are stepped in between.")
    max_cells_per_call: int = Field(
        default=2048, gt=0, description="Padded sessions x bins per engine call; on CPU "
                                        "smaller calls run faster per bin.")
    warm_spikes: bool = Field(default=True, description="Also compile the spike-raster programs.")
    gc_freeze: bool = Field(
        default=True, description="After warm-up, exempt every object alive then (modules, "
                                  "models, compiled programs) from garbage collection: a full "
                                  "collection of them stalls the event loop for 0.1-0.3 s.")
    gc_thresholds: tuple[int, int, int] | None = Field(
        default=(50_000, 20, 100),
        description="The garbage collector's generation thresholds (`gc.set_threshold`), set "
                    "after warm-up; null: Python's (700, 10, 10), under which the objects of "
                    "requests in flight are promoted and full collections come every second.")
    compilation_cache: Path | None = Field(
        default=None, description="Directory for XLA's persistent compilation cache: a restart "
                                  "loads the compiled programs instead of compiling them again.")
    late_default: LatePolicy = Field(
        default="reject", description="A session's policy for events in its closed bins unless "
                                      "it names one: `reject` the batch, or `drop` them (counted).")
    ws_queue_size: int = Field(default=8, gt=0, description="Frames buffered per WS connection.")
    ws_open_timeout_s: float = Field(
        default=10.0, gt=0, description="How long a WebSocket may take to send its open message, "
                                        "and a resume waits for the connection it takes over.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        default="INFO", description="Level of the JSON log lines on stderr.")
    access_log: bool = Field(default=False,
                             description="A JSON line per HTTP request (a client streaming "
                                         "over HTTP sends dozens a second).")
    session_store: str = Field(
        default="memory", pattern=r"^(memory|rediss?://.+|unix://.+)$",
        description="Where sessions live: `memory` (this process) or a Redis URL shared by "
                    "every replica, e.g. redis://redis:6379/0.")
    session_store_prefix: str = Field(default="s5rf:",
                                      description="Prefix of every key in the shared store.")
    session_store_timeout_s: float = Field(
        default=2.0, gt=0, description="How long one shared-store command may take before the "
                                       "request is answered 503 (a write is sent twice first).")

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("session_buckets", "bin_buckets")
    @classmethod
    def _positive_sorted(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or min(value) < 1:
            raise ValueError("buckets must be a non-empty list of positive sizes")
        return tuple(sorted(set(value)))
