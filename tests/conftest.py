"""Shared fixtures: small random cores (IR graphs) built from the contract's objects."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rcsnn.ir.arrays import Core, FixedFormat, NeuronGroup, SynapseBlock
from rcsnn.ir.graph import Graph

ROOT = Path(__file__).resolve().parents[1]
SMALL_CHECKPOINT = ROOT / "examples" / "small_3x32.rcsnn"
EXAMPLE_CHECKPOINT = ROOT / "examples" / "sapu_3x512.rcsnn"

# The Ctrl-C tests send real SIGINTs. A shell that starts pytest in the background (``pytest &``, nohup, some CI
# runners) hands it SIGINT ignored, and Python then installs no KeyboardInterrupt handler, in this process or in
# the CLIs it starts. Take the default back: a caught signal is reset to SIG_DFL across exec, so children get it too.
signal.signal(signal.SIGINT, signal.default_int_handler)


def random_core(seed: int = 0, sizes=(12, 12), resets=("zero", "subtract"), shared: bool = True,
                density: float = 0.3, cross: bool = False, n_in: int = 5, fixed: FixedFormat | None = None) -> Core:
    """A random ternary core: groups of ``sizes``; a shared T (equal sizes) or one T per group."""
    rng = np.random.default_rng(seed)
    groups = tuple(NeuronGroup(f"g{k}", n, float(rng.uniform(0.3, 0.95)), float(rng.uniform(0.5, 1.5)), r)
                   for k, (n, r) in enumerate(zip(sizes, resets)))

    def ternary(rows, cols):
        return (rng.choice([-1, 1], (rows, cols)) * (rng.random((rows, cols)) < density)).astype(np.int8)

    matrices, synapses = {}, []
    if shared:
        matrices["T"] = ternary(sizes[0], sizes[0])
    for g in groups:
        key = "T" if shared else f"T_{g.name}"
        matrices.setdefault(key, ternary(g.size, g.size))
        synapses.append(SynapseBlock(g.name, g.name, key, float(rng.uniform(0.1, 0.6))))
    if cross:
        a, b = groups[0], groups[1]
        matrices["X"] = ternary(b.size, a.size)
        synapses.append(SynapseBlock(a.name, b.name, "X", float(rng.uniform(0.1, 0.6))))
    n = sum(sizes)
    return Core(groups, matrices, tuple(synapses), bias=rng.normal(0, 0.2, n), input_weight=rng.normal(0, 0.7, (n, n_in)),
                fixed=fixed or FixedFormat()).validate()


def random_graph(*args, **kwargs) -> Graph:
    """The IR of :func:`random_core` (what front ends produce and back ends take)."""
    return Graph.from_arrays(random_core(*args, **kwargs))


@pytest.fixture
def small_core() -> Core:
    return random_core()


@pytest.fixture(scope="session")
def small_checkpoint() -> Path:
    return SMALL_CHECKPOINT


def near_threshold_currents(core, steps=40, seed=0, deltas=(1e-3, 3e-4, 1e-4)):
    """Inputs that put every membrane at θ ± δ at every step, given the reference past."""
    from rcsnn.ir.reference import FloatStepper

    rng = np.random.default_rng(seed)
    stepper = FloatStepper(core)
    theta = core.per_neuron("theta")
    x = np.zeros((steps, core.n_neurons))
    for t in range(steps):
        v, s = stepper.v.copy(), stepper.s.copy()
        stepper.step(np.zeros(core.n_neurons))
        free = stepper.v
        stepper.v, stepper.s = v, s
        target = theta + rng.choice([-1, 1], core.n_neurons) * rng.choice(deltas, core.n_neurons)
        x[t] = target - free
        stepper.step(x[t])
    return x


def interrupt_cli(args: list[str], env: dict, started, wait: float, settle: float) -> tuple[int, str]:
    """Run ``python -m rcsnn.cli ARGS``, send a real SIGINT once ``started()`` is true (within ``wait`` seconds,
    then ``settle`` more), and return the exit status and stderr; the process is killed if it outlives the test."""
    proc = subprocess.Popen([sys.executable, "-m", "rcsnn.cli", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + wait
        while not started():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        time.sleep(settle)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, err
