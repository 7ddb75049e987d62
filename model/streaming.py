"""Serving engine: the jitted ``advance`` over a device-resident slot table of session states.

Sessions' states live as rows of one state pytree (the *slot table*, ``capacity + 1`` rows;
row 0 is scratch, where padding rows of a batch are written). A batch of S sessions with up to
T new bins each is padded to bucketed shapes (S, T) so that only ``len(session_buckets) x
len(bin_buckets)`` programs are ever compiled; gather, advance and scatter run inside one
jitted call that donates the table. Compilations are counted (``Engine.compilations``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import jax
import numpy as np

from model.network import Params, State, advance, initial_state
from model.spec import ModelConfig

SCRATCH_SLOT = 0


class StateLost(RuntimeError):
    """The engine's slot table, every session's state, went with a call that failed inside
    its program (a donated table is consumed even then): only a restart serves again."""


def bucket_for(n: int, buckets: Sequence[int]) -> int:
    """Smallest bucket >= n (buckets sorted ascending); the largest if none is."""
    for b in buckets:
        if n <= b:
            return b
    return buckets[-1]


@dataclasses.dataclass(frozen=True)
class ChunkResult:
    """Host-side outputs for the real (unpadded) rows of one batch.

    log_probs float32 (S, C); spike_counts int64 (S, L); spikes: per layer bool (S, T, P) or
    None. (The per-bin readout is not copied back: no caller needs it.)
    """

    log_probs: np.ndarray
    spike_counts: np.ndarray
    spikes: tuple[np.ndarray, ...] | None


class Engine:
    """One model's jitted step over bucketed shapes, with its slot table."""

    def __init__(
        self,
        cfg: ModelConfig,
        params: Params,
        *,
        capacity: int,
        session_buckets: Sequence[int],
        bin_buckets: Sequence[int],
        max_cells: int | None = None,
    ):
        self.cfg = cfg
        self.params = params
        self.capacity = capacity
        self.session_buckets = tuple(sorted(session_buckets))
        self.bin_buckets = tuple(sorted(bin_buckets))
        self.max_cells = max_cells
        self.compilations = 0
        self.lost: str | None = None  # why the slot table is gone (StateLost), if it is
        self._lock = threading.Lock()  # the table is donated: one call at a time
        self._buffers: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
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
        # Always the sequential scan: a chunk of a few bins gains nothing from the associative
        # one, whose rounding would also change wherever a stream is cut.
        state, out = advance(params, state, bins, valid, self.cfg, with_spikes=with_spikes)
        table = jax.tree_util.tree_map(lambda t, s: t.at[slots].set(s), table, state)
        del out["readout"]  # not needed on the host: spare the copy
        return table, out

    def _traced_reset(self, table: State, slot: jax.Array) -> State:
        self.compilations += 1
        zero = initial_state(self.cfg, 1)
        return jax.tree_util.tree_map(lambda t, z: t.at[slot].set(z[0]), table, zero)

    def _traced_read(self, table: State, slots: jax.Array) -> State:
        self.compilations += 1
        return jax.tree_util.tree_map(lambda t: t[slots], table)

    def _traced_write(self, table: State, slots: jax.Array, rows: State) -> State:
        self.compilations += 1
        return jax.tree_util.tree_map(lambda t, r: t.at[slots].set(r), table, rows)

    # -- host API ---------------------------------------------------------------------------
    def step(self, slots: Sequence[int], chunks: Sequence[np.ndarray],
             with_spikes: bool = False) -> ChunkResult:
        """Advance sessions ``slots`` by their chunks (float32 (T_i, F) each, T_i >= 0).

        Rows are grouped into calls of at most the largest session bucket (and, with
        ``max_cells``, of at most that many padded session x bin cells) and chunks longer than
        the largest bin bucket are split; every call is padded to bucketed shapes.
        """
        n = len(slots)
        t_len = max((len(c) for c in chunks), default=0)
        t_max = self.bin_buckets[-1]
        s_max = self._rows_per_call(bucket_for(min(t_len, t_max), self.bin_buckets))
        if n <= s_max and t_len <= t_max:  # the serving case: one call, no reassembly
            return self._call(slots, chunks, t_len, with_spikes)
        # Several calls: a failure after the first must not leave some rows advanced.
        saved = self._save_rows(slots)
        try:
            return self._step_in_pieces(slots, chunks, t_len, s_max, with_spikes)
        except BaseException:
            with self._table():
                for ids, rows in saved:
                    self.table = self._write(self.table, ids, rows)
            raise

    def _step_in_pieces(self, slots: Sequence[int], chunks: Sequence[np.ndarray], t_len: int,
                        s_max: int, with_spikes: bool) -> ChunkResult:
        n, t_max = len(slots), self.bin_buckets[-1]
        C, L = self.cfg.n_classes, self.cfg.n_layers
        log_probs = np.zeros((n, C), np.float32)
        counts = np.zeros((n, L), np.int64)
        spikes = [np.zeros((n, t_len, P), bool) for P in self.cfg.neurons] if with_spikes else None
        for t_lo in range(0, max(t_len, 1), t_max):
            # Only the rows whose chunk reaches this piece: a long /infer recording batched
            # with streaming sessions' short chunks must not drag them through every piece.
            active = [i for i, c in enumerate(chunks) if t_lo == 0 or len(c) > t_lo]
            for lo in range(0, len(active), s_max):
                rows = active[lo : lo + s_max]
                pieces = [chunks[i][t_lo : t_lo + t_max] for i in rows]
                T = max(len(p) for p in pieces)
                out = self._call([slots[i] for i in rows], pieces, T, with_spikes)
                log_probs[rows] = out.log_probs  # a row's last piece leaves its final output
                counts[rows] += out.spike_counts
                if spikes is not None and out.spikes is not None:
                    for layer, raster in zip(spikes, out.spikes, strict=True):
                        layer[rows, t_lo : t_lo + T] = raster
        return ChunkResult(log_probs, counts, tuple(spikes) if spikes else None)

    def _rows_per_call(self, Tb: int) -> int:
        """The largest session bucket whose calls stay within ``max_cells`` (at least the
        smallest): on CPU a 128 x 64 call is ~2.5x slower per bin than four of 32 x 64, as
        the scan's (T, S, P) intermediates outgrow the cache."""
        if self.max_cells is None:
            return self.session_buckets[-1]
        fits = [S for S in self.session_buckets if S * Tb <= self.max_cells]
        return fits[-1] if fits else self.session_buckets[0]

    def _call(self, slots: Sequence[int], chunks: Sequence[np.ndarray], T: int,
              with_spikes: bool) -> ChunkResult:
        n = len(slots)
        S, Tb = bucket_for(n, self.session_buckets), bucket_for(T, self.bin_buckets)
        with self._table():
            bins, valid, slot_ids = self._inputs(S, Tb)
            try:
                for i, c in enumerate(chunks):
                    bins[i, : len(c)] = c
                    valid[i, : len(c)] = True
                slot_ids[:n] = slots
                self.table, out = self._step(self.params, self.table, slot_ids, bins, valid,
                                             with_spikes=with_spikes)
                out = jax.device_get(out)
            finally:  # back to all padding, even after a failure
                bins[:n, :T], valid[:n, :T], slot_ids[:n] = 0, False, SCRATCH_SLOT
        return ChunkResult(
            log_probs=out["log_probs"][:n],
            spike_counts=np.rint(out["spike_counts"][:n]).astype(np.int64),
            spikes=tuple(s[:n, :T] for s in out["spikes"]) if with_spikes else None)

    def _save_rows(self, slots: Sequence[int]) -> list[tuple[np.ndarray, State]]:
        """Device copies of the rows of ``slots``, read in session-bucket sized gathers (the
        ids padded with the scratch slot, whose row is never anyone's)."""
        S_max, saved = self.session_buckets[-1], []
        with self._table():
            for lo in range(0, len(slots), S_max):
                piece = slots[lo : lo + S_max]
                ids = np.full(bucket_for(len(piece), self.session_buckets), SCRATCH_SLOT,
                              np.int32)
                ids[: len(piece)] = piece
                saved.append((ids, self._read(self.table, ids)))
        return saved

    @contextlib.contextmanager
    def _table(self) -> Iterator[None]:
        """Hold the table, one call at a time. A call that donates it and fails inside its
        program (an accelerator out of memory) may consume it all the same: every session's
        state is then gone, and the engine says so (``lost``, StateLost) from then on instead
        of failing each later call on deleted buffers."""
        with self._lock:
            if self.lost is not None:
                raise StateLost(self.lost)
            try:
                yield
            except Exception as exc:
                if any(leaf.is_deleted() for leaf in jax.tree_util.tree_leaves(self.table)):
                    self.lost = f"a failed call took the slot table with it: {exc!r}"
                raise

    def _inputs(self, S: int, Tb: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """This shape's host input buffers, all padding (zeros, invalid, scratch slot) at rest:
        allocating and zeroing (S, Tb, F) floats per call cost as much as small steps."""
        buffers = self._buffers.get((S, Tb))
        if buffers is None:
            buffers = self._buffers[S, Tb] = (np.zeros((S, Tb, self.cfg.n_in), np.float32),
                                              np.zeros((S, Tb), bool),
                                              np.full(S, SCRATCH_SLOT, np.int32))
        return buffers

    def reset(self, slot: int) -> None:
        """Zero one session's state (a new or reset session)."""
        with self._table():
            self.table = self._reset(self.table, np.int32(slot))

    def read(self, slot: int) -> State:
        """One session's state as host numpy arrays (rows of the table)."""
        with self._table():
            # One compiled gather: indexing leaf by leaf costs a dispatch each (5x slower),
            # and the shared store reads a row after every batch.
            rows = jax.device_get(self._read(self.table, np.array([slot], np.int32)))
        return jax.tree_util.tree_map(lambda r: r[0], rows)

    def write(self, slot: int, row: State) -> None:
        """Overwrite one session's state (state import, store load)."""
        rows = jax.tree_util.tree_map(lambda r: np.asarray(r)[None], row)
        with self._table():
            self.table = self._write(self.table, np.array([slot], np.int32), rows)

    def warmup(self, with_spikes: Sequence[bool] = (False,)) -> None:
        """Compile every bucketed shape ``step`` can call now, leaving all states as they were
        (scratch only)."""
        for flag in with_spikes:
            for T in self.bin_buckets:
                for S in self.session_buckets:
                    if self._rows_per_call(T) < S:  # a shape ``step`` never calls
                        continue
                    self._call([SCRATCH_SLOT] * S, [np.zeros((T, self.cfg.n_in), np.float32)] * S,
                               T, flag)
        self.reset(SCRATCH_SLOT)
        self.write(SCRATCH_SLOT, self.read(SCRATCH_SLOT))
        for S in self.session_buckets:  # the gathers that guard a step of several calls
            for ids, rows in self._save_rows([SCRATCH_SLOT] * S):
                with self._table():
                    self.table = self._write(self.table, ids, rows)

