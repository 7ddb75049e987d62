"""Serving engine: the jitted ``advance`` over a device-resident slot table of session states.

Sessions' states live as rows of one state pytree (the *slot table*, ``capacity + 1`` rows;
row 0 is scratch, where padding rows of a batch are written). A batch of S sessions with up to
T new bins each is padded to bucketed shapes (S, T) so that only ``len(session_buckets) x
len(bin_buckets)`` programs are ever compiled; gather, advance and scatter run inside one
jitted call that donates the table. Compilations are counted (``Engine.compilations``).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from model.network import Params, State, advance, initial_state
from model.spec import ModelConfig, ScanMethod

SCRATCH_SLOT = 0


def bucket_for(n: int, buckets: Sequence[int]) -> int:
    """Smallest bucket >= n (buckets sorted ascending); the largest if none is."""
    for b in buckets:
        if n <= b:
            return b
    return buckets[-1]


@dataclasses.dataclass(frozen=True)
class ChunkResult:
    """Host-side outputs for the real (unpadded) rows of one batch.

    log_probs float32 (S, C); spike_counts int64 (S, L); readout float32 (S, T, C);
    spikes: per layer bool (S, T, P) or None.
    """

    log_probs: np.ndarray
    spike_counts: np.ndarray
    readout: np.ndarray
    spikes: tuple[np.ndarray, ...] | None


class Engine:
    """One model's jitted step over bucketed shapes, with its slot table."""

    def __init__(
        self,
        cfg: ModelConfig,
        params: Params,
        *,
        capacity: int,
        session_buckets: Sequence[int] = (1, 8, 32, 128),
        bin_buckets: Sequence[int] = (1, 4, 16, 64),
        scan: ScanMethod = "sequential",
    ):
        self.cfg = cfg
        self.params = params
        self.capacity = capacity
        self.session_buckets = tuple(sorted(session_buckets))
        self.bin_buckets = tuple(sorted(bin_buckets))
        self.scan = scan
        self.compilations = 0
        self._lock = threading.Lock()  # the table is donated: one call at a time
        self.table: State = initial_state(cfg, capacity + 1)
        self._step = jax.jit(self._traced_step, static_argnames=("with_spikes",),
                             donate_argnums=(1,))
        self._reset = jax.jit(self._traced_reset, donate_argnums=(0,))
        self._write = jax.jit(self._traced_write, donate_argnums=(0,))
        self._read = jax.jit(self._traced_read)

    # -- traced functions (their Python bodies run once per compiled shape) --------------
    def _traced_step(self, params: Params, table: State, slots: jax.Array, bins: jax.Array,
                     valid: jax.Array, with_spikes: bool) -> tuple[State, dict[str, Any]]:
        self.compilations += 1
        state = jax.tree_util.tree_map(lambda a: a[slots], table)
        state, out = advance(params, state, bins, valid, self.cfg, scan=self.scan,
                             with_spikes=with_spikes)
        table = jax.tree_util.tree_map(lambda t, s: t.at[slots].set(s), table, state)
        return table, out

    def _traced_reset(self, table: State, slot: jax.Array) -> State:
        self.compilations += 1
        zero = initial_state(self.cfg, 1)
        return jax.tree_util.tree_map(lambda t, z: t.at[slot].set(z[0]), table, zero)

    def _traced_read(self, table: State, slot: jax.Array) -> State:
        self.compilations += 1
        return jax.tree_util.tree_map(lambda t: t[slot], table)

    def _traced_write(self, table: State, slot: jax.Array, row: State) -> State:
        self.compilations += 1
        return jax.tree_util.tree_map(lambda t, r: t.at[slot].set(r), table, row)

    # -- host API ---------------------------------------------------------------------------
    def step(self, slots: Sequence[int], chunks: Sequence[np.ndarray],
             with_spikes: bool = False) -> ChunkResult:
        """Advance sessions ``slots`` by their chunks (float32 (T_i, F) each, T_i >= 0).

        Rows are grouped into calls of at most the largest session bucket and chunks longer
        than the largest bin bucket are split; every call is padded to bucketed shapes.
        """
        n = len(slots)
        C, L = self.cfg.n_classes, self.cfg.n_layers
        lengths = np.array([len(c) for c in chunks], dtype=np.int64)
        T = int(lengths.max(initial=0))
        log_probs = np.zeros((n, C), np.float32)
        counts = np.zeros((n, L), np.int64)
        readout = np.zeros((n, T, C), np.float32)
        spikes = [np.zeros((n, T, P), bool) for P in self.cfg.neurons] if with_spikes else None
        s_max, t_max = self.session_buckets[-1], self.bin_buckets[-1]
        for lo in range(0, n, s_max):
            rows = list(range(lo, min(n, lo + s_max)))
            for t_lo in range(0, max(T, 1), t_max):
                t_hi = min(max(T, 1), t_lo + t_max)
                out = self._call(
                    [slots[r] for r in rows],
                    [chunks[r][t_lo:t_hi] for r in rows],
                    t_hi - t_lo,
                    with_spikes,
                )
                log_probs[rows] = out["log_probs"]
                counts[rows] += out["spike_counts"]
                readout[rows, t_lo:t_hi] = out["readout"]
                if spikes is not None:
                    for layer, raster in zip(spikes, out["spikes"], strict=True):
                        layer[rows, t_lo:t_hi] = raster
        return ChunkResult(log_probs, counts, readout, tuple(spikes) if spikes else None)

    def _call(self, slots: list[int], chunks: list[np.ndarray], T: int,
              with_spikes: bool) -> dict[str, np.ndarray]:
        n = len(slots)
        S, Tb = bucket_for(n, self.session_buckets), bucket_for(T, self.bin_buckets)
        F = self.cfg.n_in
        bins = np.zeros((S, Tb, F), np.float32)
        valid = np.zeros((S, Tb), bool)
        for i, c in enumerate(chunks):
            bins[i, : len(c)] = c
            valid[i, : len(c)] = True
        slot_ids = np.full(S, SCRATCH_SLOT, np.int32)
        slot_ids[:n] = slots
        with self._lock:
            self.table, out = self._step(self.params, self.table, slot_ids, bins, valid,
                                         with_spikes=with_spikes)
            out = jax.device_get(out)
        result = {
            "log_probs": out["log_probs"][:n],
            "spike_counts": np.rint(out["spike_counts"][:n]).astype(np.int64),
            "readout": out["readout"][:n, :T],
        }
        if with_spikes:
            result["spikes"] = tuple(s[:n, :T] for s in out["spikes"])
        return result

    def reset(self, slot: int) -> None:
        """Zero one session's state (a new or reset session)."""
        with self._lock:
            self.table = self._reset(self.table, np.int32(slot))

    def read(self, slot: int) -> State:
        """One session's state as host numpy arrays (rows of the table)."""
        with self._lock:
            # One compiled gather: indexing leaf by leaf costs a dispatch each (5x slower),
            # and the shared store reads a row after every batch.
            return jax.device_get(self._read(self.table, np.int32(slot)))

    def write(self, slot: int, row: State) -> None:
        """Overwrite one session's state (state import, store load)."""
        with self._lock:
            self.table = self._write(self.table, np.int32(slot), row)

    def warmup(self, with_spikes: Sequence[bool] = (False,)) -> None:
        """Compile every bucketed shape now, leaving all states as they were (scratch only)."""
        for flag in with_spikes:
            for S in self.session_buckets:
                for T in self.bin_buckets:
                    self._call([SCRATCH_SLOT] * S, [np.zeros((T, self.cfg.n_in), np.float32)] * S,
                               T, flag)
        self.reset(SCRATCH_SLOT)
        self.read(SCRATCH_SLOT)
        self.write(SCRATCH_SLOT, self.read(SCRATCH_SLOT))


def run_offline(cfg: ModelConfig, params: Params, bins: jax.Array, lengths: jax.Array,
                scan: ScanMethod = "sequential") -> tuple[State, dict[str, Any]]:
    """Whole padded recordings at once: bins float32 (B, T, F), lengths int (B,)."""
    valid = jnp.arange(bins.shape[1])[None, :] < jnp.asarray(lengths)[:, None]
    return advance(params, initial_state(cfg, bins.shape[0]), bins, valid, cfg, scan=scan)
