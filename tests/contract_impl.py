"""An independent, deliberately plain implementation of docs/contract.md.

It shares no code with rcsnn: it reads the checkpoint's tensors with safetensors
and loops over neurons in Python, computing W = alpha * T as the contract writes it.
"""

from __future__ import annotations

import json

import numpy as np
from safetensors import safe_open


def load_tensors(path):
    with safe_open(str(path), framework="numpy") as f:
        config = json.loads(f.metadata()["rcsnn"])
        return config, {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is no mapping)


def contract_float_raster(path, tokens: np.ndarray) -> np.ndarray:
    """Float64 raster (steps, N) for token indices, straight from the contract's equations."""
    config, t = load_tensors(path)
    sizes = [g["size"] for g in config["groups"]]
    starts = np.cumsum([0] + sizes)
    n = starts[-1]
    beta = np.repeat(t["groups.beta"], sizes)
    theta = np.repeat(t["groups.theta"], sizes)
    subtract = np.repeat([g["reset"] == "subtract" for g in config["groups"]], sizes)
    names = [g["name"] for g in config["groups"]]
    # Dense W = alpha * T (float64), the contract's sum over j of W_ij s_j.
    W = np.zeros((n, n))
    for s, alpha in zip(config["synapses"], t["synapses.alpha"]):
        i, j = names.index(s["post"]), names.index(s["pre"])
        T = t[f"matrix.{s['matrix']}"].astype(np.float64)
        W[starts[i]:starts[i + 1], starts[j]:starts[j + 1]] += alpha * T
    x = t["frontend.embedding"][tokens] @ t["input.weight"].T
    b = t["neurons.bias"]
    v = np.zeros(n)
    s = np.zeros(n)
    raster = np.zeros((len(tokens), n), dtype=np.int8)
    for step in range(len(tokens)):
        current = x[step] + b + W @ s
        v = np.where(subtract, beta * v - theta * s, beta * v * (1 - s)) + current
        s = (v >= theta).astype(np.float64)
        raster[step] = s
    return raster


def contract_fixed_raster(beta, theta, alpha, T_blocks, bias, x, reset_subtract, Wv, Fv, Fb):
    """Fixed-point raster, neuron by neuron with Python integers (unbounded, floor division)."""
    n = len(beta)
    lo, hi = -(2 ** (Wv - 1)), 2 ** (Wv - 1) - 1
    sat = lambda z: min(max(z, lo), hi)  # noqa: E731
    q = lambda z: sat(int(np.round(z * 2 ** Fv)))  # noqa: E731
    beta_q = [int(np.round(b * 2 ** Fb)) for b in beta]
    theta_q = [q(th) for th in theta]
    bias_q = [q(b) for b in bias]
    alpha_q = [q(a) for a in alpha]
    v = [0] * n
    s = [0] * n
    raster = np.zeros((len(x), n), dtype=np.int8)
    for step in range(len(x)):
        new_v = []
        for i in range(n):
            syn = sum(aq * int(T[i, j]) * s[j] for aq, T in zip(alpha_q, T_blocks) for j in range(n))
            if reset_subtract[i]:
                leak = (beta_q[i] * v[i]) // 2 ** Fb - theta_q[i] * s[i]
            else:
                leak = (beta_q[i] * v[i] * (1 - s[i])) // 2 ** Fb
            new_v.append(sat(leak + q(x[step][i]) + bias_q[i] + syn))
        v = new_v
        s = [int(vi >= th) for vi, th in zip(v, theta_q)]
        raster[step] = s
    return raster


def contract_run(spec: dict, x: np.ndarray, fixed: tuple[int, int, int, int] | None = None, late_clip: bool = False):
    """Spikes and membranes ``(steps, N)`` of a plain description of a core, straight from docs/contract.md.

    ``spec``: ``groups`` (in update order: a same-step block's pre comes first) each with ``size``,
    per-neuron lists ``beta``, ``theta``, ``beta_syn``, ``bias``, and ``reset``, ``current_delay``;
    ``blocks`` each with ``pre``, ``post`` (group indices), ``matrix`` (post x pre), ``dense``,
    ``alpha``, ``delay``, in synapse order. ``x``: external currents without bias. ``fixed``:
    ``(Wv, Fv, Fb, Ww)`` for the integer contract (Python integers, floor division), else float64.
    A group's optional ``max_spikes`` (default 1; 0: no limit) makes its spikes counts: ``s = floor(v /
    theta)`` clipped to ``[1, max_spikes]`` where ``v >= theta``; synapses weight each spike by its count,
    the subtract resets remove ``theta * s``, the zero resets use ``min(s, 1)``. Optional per-neuron lists
    ``v_min``, ``v_max`` (default -inf, +inf) clip the membrane after its update and before the spike
    decision (fixed: ``max(-2**(Wv-1), round(v_min * 2**Fv))``, ``min(2**(Wv-1) - 1, round(v_max * 2**Fv))``);
    ``late_clip`` clips after the spike decision instead (a deliberately wrong order, for negative controls).
    """
    import math
    from fractions import Fraction

    groups, blocks = spec["groups"], spec["blocks"]
    starts = np.cumsum([0] + [g["size"] for g in groups]).tolist()
    flat = {key: [value for g in groups for value in g[key]] for key in ("beta", "theta", "beta_syn", "bias")}
    low, high = ([value for g in groups for value in g.get(key, [default] * g["size"])]
                 for key, default in (("v_min", -math.inf), ("v_max", math.inf)))
    if fixed:
        wv, fv, fb, ww = fixed
        sat = lambda z, bits=wv: min(max(z, -(2 ** (bits - 1))), 2 ** (bits - 1) - 1)  # noqa: E731
        q = lambda z, bits=wv: sat(int(np.round(z * 2.0 ** fv)), bits)  # noqa: E731
        beta, beta_syn = ([int(np.round(b * 2.0 ** fb)) for b in flat[k]] for k in ("beta", "beta_syn"))
        theta, bias = [q(t) for t in flat["theta"]], [q(b) for b in flat["bias"]]
        decay = lambda factor, value: (factor * value) // 2 ** fb  # noqa: E731
        low, high = ([q(z) if math.isfinite(z) else sat(int(math.copysign(2 ** wv, z))) for z in zs] for zs in (low, high))
    else:
        sat, beta, beta_syn, theta, bias = (lambda z: z), flat["beta"], flat["beta_syn"], flat["theta"], flat["bias"]
        decay = lambda factor, value: factor * value  # noqa: E731
    n = starts[-1]
    v, i, s = [0] * n, [0] * n, [0] * n
    spikes, membranes = np.zeros((len(x), n), dtype=np.int64), np.zeros((len(x), n))
    for t in range(len(x)):
        now = [0] * n
        current = [(q(x[t][k]) if fixed else x[t][k]) + bias[k] for k in range(n)]
        for gi, g in enumerate(groups):
            lo, hi = starts[gi], starts[gi + 1]
            for b in (b for b in blocks if b["post"] == gi):
                src, p0 = (s if b["delay"] else now), starts[b["pre"]]
                for r in range(g["size"]):
                    on = [j for j in range(starts[b["pre"] + 1] - p0) if src[p0 + j]]
                    if b["dense"]:  # the exact sum of count * weight, rounded once
                        w = [(b["alpha"] * b["matrix"][r][j], src[p0 + j]) for j in on]
                        current[lo + r] += (sum(q(z, ww) * c for z, c in w) if fixed
                                            else float(sum(Fraction(z) * int(c) for z, c in w)))
                    else:
                        count = sum(int(b["matrix"][r][j]) * int(src[p0 + j]) for j in on)
                        current[lo + r] += (q(b["alpha"]) if fixed else b["alpha"]) * count
            synaptic = g["current_delay"] == 1 or any(flat["beta_syn"][lo:hi])
            for k in range(lo, hi):
                j = current[k]
                if synaptic:
                    new = sat(decay(beta_syn[k], i[k]) + current[k])
                    j, i[k] = (i[k] if g["current_delay"] else new), new
                mode, bk, th, sk = g["reset"], beta[k], theta[k], s[k]
                fired = min(sk, 1)
                if mode == "zero":
                    v[k] = sat(decay(bk, v[k] * (1 - fired)) + j)
                elif mode == "subtract":
                    v[k] = sat(decay(bk, v[k]) - th * sk + j)
                elif mode == "subtract_before_decay":
                    v[k] = sat(decay(bk, v[k] - th * sk) + j)
                else:
                    v[k] = sat((decay(bk, v[k]) + j) * (1 - fired))
                clip = min(max(v[k], low[k]), high[k])
                v[k] = v[k] if late_clip else clip
                limit = g.get("max_spikes", 1)
                if v[k] >= th:
                    count = max(int(v[k] // th if fixed else math.floor(v[k] / th)), 1)
                    now[k] = min(count, limit) if limit else count
                v[k] = clip
        s = now
        spikes[t], membranes[t] = s, v
    return spikes, membranes
