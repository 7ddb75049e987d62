"""The S5-RF network as pure functions of (params, state, bins).

One function, ``advance``, runs the network over a chunk of time bins from a given state. The
offline path (training, evaluation, one-shot inference) is ``advance`` from
``initial_state``; streaming calls it chunk after chunk. Both use the same scan, so a
recording cut into chunks anywhere gives the same result as the whole recording at once
(bit for bit with the sequential scan in one compiled shape; programs of other shapes, and the
associative scan at a cut, may round differently in the last bits).

Layout: batch-major at the boundary, bins float32 (S, T, F) and valid bool (S, T) for S
sequences of T bins with F input features; time-major inside.

Params pytree (float32):
    {"layers": ({"B": (P, H, 2), "log_neg_re": (P,), "im": (P,), "log_step": (P,)}, ...),
     "readout": {"W": (C, P_last), "tau": (C,)}}
  B holds the real and imaginary parts of the complex input projection; the eigenvalues are
  Lambda = -exp(log_neg_re) + i*im and the step is Delta = exp(log_step).
State pytree:
    {"layers": (x complex64 (S, P), ...), "li": float32 (S, C), "sum": float32 (S, C),
     "comp": float32 (S, C), "count": int32 (S,)}
  the RF states, the leaky-integrator readout, and the running sum of the readout (with its
  Kahan compensation) and bin count of its mean.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from model import hippo
from model.spec import Discretization, ModelConfig, ScanMethod
from model.ssm import DISCRETIZE, SCANS, spike

Params = dict[str, Any]
State = dict[str, Any]


def init_params(key: jax.Array, cfg: ModelConfig) -> Params:
    """Initialise parameters as in the paper: HiPPO-LegS eigenvalues per block, V^-1-projected
    lecun-normal inputs, log-uniform steps, and a leaky readout with decay 0.8."""
    layers = []
    n_in = cfg.n_in
    for P in cfg.neurons:
        key, k_b, k_step = jax.random.split(key, 3)
        Lambda, Vinv = hippo.block_eigen(P, cfg.blocks)
        layers.append(
            {
                "B": hippo.init_projection(k_b, P, n_in, Vinv),
                "log_neg_re": jnp.asarray(np.log(-Lambda.real), jnp.float32),
                "im": jnp.asarray(Lambda.imag, jnp.float32),
                "log_step": hippo.init_log_step(k_step, P, cfg.eta_min, cfg.eta_max),
            }
        )
        n_in = P
    key, k_w = jax.random.split(key)
    W = jax.nn.initializers.lecun_normal(in_axis=-1, out_axis=-2)(
        k_w, (cfg.n_classes, n_in), jnp.float32
    )
    tau = jnp.full((cfg.n_classes,), np.log(0.8 / 0.2), jnp.float32)  # sigmoid(tau) = 0.8
    return {"layers": tuple(layers), "readout": {"W": W, "tau": tau}}


def initial_state(cfg: ModelConfig, batch: int) -> State:
    """Zero state for ``batch`` sequences (see the module docstring for shapes)."""
    return {
        "layers": tuple(jnp.zeros((batch, P), jnp.complex64) for P in cfg.neurons),
        "li": jnp.zeros((batch, cfg.n_classes), jnp.float32),
        "sum": jnp.zeros((batch, cfg.n_classes), jnp.float32),
        "comp": jnp.zeros((batch, cfg.n_classes), jnp.float32),
        "count": jnp.zeros((batch,), jnp.int32),
    }


def _eigenvalues(layer: Params) -> jax.Array:
    return -jnp.exp(layer["log_neg_re"]) + 1j * layer["im"]


def advance(
    params: Params,
    state: State,
    bins: jax.Array,
    valid: jax.Array,
    cfg: ModelConfig,
    *,
    scan: ScanMethod = "sequential",
    with_spikes: bool = False,
    dropout_key: jax.Array | None = None,
) -> tuple[State, dict[str, Any]]:
    """Run the network over a chunk of bins from ``state``.

    Args:
        bins: float32 (S, T, F) binned input events.
        valid: bool (S, T); False marks padding, which leaves the state untouched.
        scan: the recurrence implementation (same maths, different float rounding order).
        with_spikes: also return every layer's per-bin spikes (for rasters).
        dropout_key: enables training-mode dropout on the middle layers' inputs.
    Returns:
        (new_state, outputs) with outputs
          "log_probs": float32 (S, C), log-softmax of the readout's mean over all bins so far;
          "readout": float32 (S, T, C), the leaky-integrator output per bin;
          "spike_counts": float32 (S, L), spikes per layer in this chunk;
          "spikes": tuple of bool (S, T, P) per layer, when ``with_spikes``.
    """
    x = jnp.swapaxes(bins, 0, 1)  # (T, S, F)
    mask = jnp.swapaxes(valid, 0, 1)[..., None]  # (T, S, 1)
    new_layers, counts, rasters = [], [], []
    last = cfg.n_layers - 1
    for i, (layer, x0) in enumerate(zip(params["layers"], state["layers"], strict=True)):
        dropout = None
        if dropout_key is not None and cfg.dropout > 0 and 0 < i < last:
            dropout_key, k = jax.random.split(dropout_key)
            dropout = (k, cfg.dropout)
        method: Discretization = cfg.discretization if i == 0 else "dirac"
        xs, s = _rf_layer(layer, x, x0, mask, cfg, method, scan, dropout)
        new_layers.append(xs[-1])
        counts.append(s.sum(axis=(0, 2)))
        if with_spikes:
            rasters.append(jnp.swapaxes(s > 0, 0, 1))
        x = s + x if cfg.skip and 0 < i < last else s

    readout = params["readout"]
    z = x @ readout["W"].T  # (T, S, C)
    decay = jax.nn.sigmoid(readout["tau"])
    r = SCANS[scan](jnp.where(mask, decay, 1.0), jnp.where(mask, z, 0.0), state["li"])
    # Kahan-compensated: a stream adds a few bins a call to a sum that grows for hours, and
    # plain float32 additions would round away about a part in 1e5 of its mean in an hour.
    addend = (r * mask).sum(axis=0) - state["comp"]
    total = state["sum"] + addend
    comp = (total - state["sum"]) - addend
    count = state["count"] + mask[..., 0].sum(axis=0, dtype=jnp.int32)
    new_state = {"layers": tuple(new_layers), "li": r[-1], "sum": total, "comp": comp,
                 "count": count}
    mean = (total - comp) / jnp.maximum(count, 1).astype(jnp.float32)[:, None]
    outputs: dict[str, Any] = {
        "log_probs": jax.nn.log_softmax(mean, axis=-1),
        "readout": jnp.swapaxes(r, 0, 1),
        "spike_counts": jnp.stack(counts, axis=-1),
    }
    if with_spikes:
        outputs["spikes"] = tuple(rasters)
    return new_state, outputs


def run_offline(params: Params, bins: jax.Array | np.ndarray, lengths: jax.Array | np.ndarray,
                cfg: ModelConfig, *, scan: ScanMethod = "sequential",
                dropout_key: jax.Array | None = None) -> tuple[State, dict[str, Any]]:
    """Whole padded recordings from a zero state (training, evaluation, one-shot inference):
    bins float32 (B, T, F), lengths int (B,); outputs as ``advance``'s."""
    x = jnp.asarray(bins)
    valid = jnp.arange(x.shape[1])[None, :] < jnp.asarray(lengths)[:, None]
    return advance(params, initial_state(cfg, x.shape[0]), x, valid, cfg, scan=scan,
                   dropout_key=dropout_key)


def jit_offline(cfg: ModelConfig, scan: ScanMethod) -> Callable[..., Any]:
    """``run_offline`` of one network and scan, jitted: ``(params, bins, lengths)``."""
    return jax.jit(functools.partial(run_offline, cfg=cfg, scan=scan))


def _rf_layer(layer: Params, x: jax.Array, x0: jax.Array, mask: jax.Array, cfg: ModelConfig,
              method: Discretization, scan: ScanMethod,
              dropout: tuple[jax.Array, float] | None) -> tuple[jax.Array, jax.Array]:
    """One resonate-and-fire layer over a chunk: input currents, the discretised complex
    recurrence from ``x0``, and spikes.

    x float32 (T, S, F_in); x0 complex64 (S, P); mask bool (T, S, 1), False on padding, which
    leaves the state untouched; dropout (key, rate) on the currents, or None.
    Returns the states complex64 (T, S, P) and the spikes float32 (T, S, P).
    """
    u = x @ layer["B"][..., 0].T
    u = u + 1j * (x @ layer["B"][..., 1].T) if cfg.keep_imag else u.astype(jnp.complex64)
    if dropout is not None:
        key, rate = dropout
        u = jnp.where(jax.random.bernoulli(key, 1.0 - rate, u.shape), u / (1.0 - rate), 0)
    Lambda_bar, B_scale = DISCRETIZE[method](_eigenvalues(layer), jnp.exp(layer["log_step"]))
    a = jnp.where(mask, Lambda_bar, jnp.ones_like(Lambda_bar))
    b = jnp.where(mask, B_scale * u, 0)
    xs = SCANS[scan](a, b.astype(jnp.complex64), x0)
    if method == "zoh":
        # ZOH keeps the state in the HiPPO basis; read it out through V (reference code).
        xs_out = xs @ jnp.asarray(hippo.block_eigvecs(x0.shape[-1], cfg.blocks)).T
    else:
        xs_out = xs
    return xs, spike(xs_out) * mask


def synaptic_ops(input_events: Any, spike_counts: Any, cfg: ModelConfig) -> Any:
    """NeuroBench synaptic operations: sum over sources of spikes x fan-out.

    input_events (...) active input entries; spike_counts (..., L) spikes per layer -> (...).
    With skip connections a middle layer passes its input on with its spikes, so a layer's
    spikes reach every later layer up to the last (``advance``); the last layer's reach the
    readout.
    """
    fan = np.asarray(cfg.fan_out(), np.float64)
    L = cfg.n_layers
    reach = np.array([fan[j + 1:L].sum() if cfg.skip and j < L - 1 else fan[j + 1]
                      for j in range(L)])
    return np.asarray(input_events) * fan[0] + np.asarray(spike_counts) @ reach


def count_params(params: Params) -> int:
    """Number of trainable scalars."""
    return int(sum(np.size(p) for p in jax.tree_util.tree_leaves(params)))
