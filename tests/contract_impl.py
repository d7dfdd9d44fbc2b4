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
