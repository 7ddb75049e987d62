"""The models a server holds: each checkpoint's card, its Engine and the engine's free slots."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path

import jax
import numpy as np

from model.binning import BinnerState, feed
from model.checkpoint import (
    CARD_FILE,
    PARAMS_FILE,
    Checkpoint,
    CheckpointError,
    ModelCard,
    discover,
    load,
)
from model.events import EVENT_DTYPES
from model.streaming import SCRATCH_SLOT, Engine
from server.settings import Settings

log = logging.getLogger("s5rf.server")


class SlotPool:
    """Free rows ``first .. last`` of an Engine's slot table (never row 0, the scratch row)."""

    def __init__(self, first: int, last: int):
        assert first > SCRATCH_SLOT
        self._free = list(range(last, first - 1, -1))

    def take(self) -> int | None:
        """A free slot, or None when every slot is in use."""
        return self._free.pop() if self._free else None

    def give(self, slot: int) -> None:
        self._free.append(slot)


@dataclasses.dataclass
class LoadedModel:
    """One servable network: its card, its engine, and its engine's slots, split between
    sessions and ``/infer`` calls (so that ``max_concurrent_infer`` caps the calls per model and
    sessions never take their slots)."""

    card: ModelCard
    engine: Engine
    slots: SlotPool
    infer_slots: SlotPool
    # A session belongs to exactly this network (``ModelCard.version``): hashed once, not on
    # every result that names it.
    version: str = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.version = self.card.version

    @property
    def name(self) -> str:
        return self.card.name


class ModelRegistry:
    """Name -> LoadedModel, built once at start-up (or by a test) and shared read-only."""

    def __init__(self, models: list[LoadedModel]):
        self._models = {m.name: m for m in models}

    def get(self, name: str) -> LoadedModel | None:
        return self._models.get(name)

    def __iter__(self) -> Iterator[LoadedModel]:
        return iter(self._models.values())

    def warm(self, with_spikes: bool) -> None:
        """Compile every bucketed program of every engine (blocking; run it in a thread)."""
        flags = (False, True) if with_spikes else (False,)
        for m in self:
            m.engine.warmup(with_spikes=flags)
            # The binning kernels compile per event dtype: now, not in the first request.
            # (Two events, as a field of a longer structured array is a strided view.)
            spec = m.card.input
            feed(BinnerState.start(spec), np.zeros(2, EVENT_DTYPES[spec.sensor]), spec,
                 flush=True)
            log.info("model_warm", extra={"fields": {
                "model": m.name, "compilations": m.engine.compilations}})


def use_compilation_cache(path: Path) -> None:
    """Keep every compiled program in ``path`` (this process; JAX's config is global)."""
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def build_model(ckpt: Checkpoint, settings: Settings) -> LoadedModel:
    """Wrap a loaded checkpoint in an Engine sized for the settings' caps."""
    capacity = settings.max_sessions + settings.max_concurrent_infer
    engine = Engine(ckpt.cfg, ckpt.params, capacity=capacity,
                    session_buckets=settings.session_buckets, bin_buckets=settings.bin_buckets,
                    max_cells=settings.max_cells_per_call)
    return LoadedModel(card=ckpt.card, engine=engine,
                       slots=SlotPool(SCRATCH_SLOT + 1, settings.max_sessions),
                       infer_slots=SlotPool(settings.max_sessions + 1, capacity))


def load_registry(settings: Settings) -> ModelRegistry:
    """Load every checkpoint under ``settings.checkpoints``."""
    if settings.compilation_cache is not None:
        use_compilation_cache(settings.compilation_cache)
    for weights in sorted(settings.checkpoints.glob(f"*/{PARAMS_FILE}")):
        if not (weights.parent / CARD_FILE).exists():  # mid-copy, or a card not yet written
            log.warning("checkpoint_skipped", extra={"fields": {
                "path": str(weights.parent), "reason": f"{PARAMS_FILE} without {CARD_FILE}"}})
    models: list[LoadedModel] = []
    paths: dict[str, Path] = {}
    for path in discover(settings.checkpoints):
        ckpt = load(path)
        if ckpt.card.name in paths:  # one name, one model: the second would be unreachable
            raise CheckpointError(f"{paths[ckpt.card.name]} and {path} are both named "
                                  f"{ckpt.card.name!r}; rename one in its model.json")
        paths[ckpt.card.name] = path
        models.append(build_model(ckpt, settings))
        log.info("model_loaded", extra={"fields": {"model": models[-1].name, "path": str(path)}})
    if not models:  # a mistyped path or an unmounted volume: fail at start, not at each request
        root = settings.checkpoints.resolve()
        why = ("it does not exist" if not root.exists() else "it is not a folder"
               if not root.is_dir() else f"none of its sub-directories holds a {CARD_FILE}")
        raise CheckpointError(f"no checkpoint under {root} ({why}); set --checkpoints or "
                              "S5RF_CHECKPOINTS")
    return ModelRegistry(models)
