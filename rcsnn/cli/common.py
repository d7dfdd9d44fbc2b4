"""Arguments every command shares: the CORE to load, and the stimulus to drive it with."""

from __future__ import annotations

import argparse

from ..arguments import nonnegative_int, positive_float, positive_int
from ..frontends.flavors import DISCRETIZATIONS, FLAVORS
from ..frontends.load import load_core
from ..ir.graph import Graph
from ..ir.nodes import RESET_MODES
from ..ir.stimulus import Stimulus, resolve_stimulus
from ..verify.report import Provenance

__all__ = ["add_core_arguments", "load", "add_stimulus_arguments", "stimulus", "provenance"]


def add_core_arguments(p: argparse.ArgumentParser) -> None:
    """``CORE`` and the NIR-only ``--dt``, ``--reset``, ``--flavor``, ``--discretize`` and ``--max-spikes``."""
    p.add_argument("core", metavar="CORE", help="rcsnn checkpoint (.rcsnn), IR file (.json/.graphml) or NIR file (.nir)")
    p.add_argument("--dt", type=positive_float, default=None,
                   help="NIR only: seconds per step (default: the flavour's; 1e-4, snnTorch's exporter)")
    p.add_argument("--reset", choices=RESET_MODES, default=None, help="NIR only: reset mode (default: the flavour's)")
    p.add_argument("--flavor", choices=tuple(FLAVORS), default=None,
                   help="NIR only: the framework whose exporter wrote the file, to compute what it computes "
                        "(docs/interop.md); default: snnTorch's conventions")
    p.add_argument("--discretize", choices=DISCRETIZATIONS, default=None,
                   help="NIR only: beta = 1 - dt/tau (euler) or exp(-dt/tau) (exact); default: the flavour's")
    p.add_argument("--max-spikes", type=nonnegative_int, default=None, metavar="N",
                   help="NIR only: spikes per neuron per step at most, 0 = no limit (default: the flavour's, its "
                        "framework's default spike function: sinabs 0 (MultiSpike), rockpool 65536; else 1)")


def load(args: argparse.Namespace) -> Graph:
    """The IR of the CORE argument."""
    return load_core(args.core, dt=args.dt, reset=args.reset, flavor=args.flavor, discretize=args.discretize,
                     max_spikes=args.max_spikes)


def add_stimulus_arguments(p: argparse.ArgumentParser, *, required: bool = False, currents: bool = False,
                           steps_help: str = "cut the stimulus to this many steps") -> None:
    """``--prompt`` | ``--input`` [| ``--currents``] and ``--steps``."""
    source = p.add_mutually_exclusive_group(required=required)
    source.add_argument("--prompt", help="text fed one character per step (language-model cores)"
                        + ("" if required else "; default: held-out pydoc text"))
    source.add_argument("--input", dest="inputs", help=".npy array (steps x inputs) fed to the input port")
    if currents:
        source.add_argument("--currents", help=".npy array (steps x neurons) of external currents x, without bias")
    else:
        p.set_defaults(currents=None)
    p.add_argument("--steps", type=positive_int, default=None, help=steps_help)


def stimulus(args: argparse.Namespace, graph: Graph, default_steps: int = 200) -> Stimulus:
    """The stimulus the arguments choose (validated once, in :mod:`rcsnn.ir.stimulus`)."""
    return resolve_stimulus(graph, prompt=args.prompt, inputs=args.inputs, currents=args.currents,
                            steps=args.steps, default_steps=default_steps)


def provenance(args: argparse.Namespace, stim: Stimulus) -> Provenance:
    return Provenance.of(args.core, stim)
