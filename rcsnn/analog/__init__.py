"""The analog backend: the core as a clocked resistor–capacitor–comparator circuit in ngspice.

* :mod:`.design` — derived circuit values (τ, R_L, K, R_unit, thresholds, timing) from a core;
* :mod:`.neurons` — the per-neuron circuit plan (cell, window, values) of every neuron kind and reset mode;
* :mod:`.netlist` — deterministic SPICE decks, stimulus files and the ``core.json`` sidecar;
  the cell library ``rcsnn_cells.lib`` ships beside it;
* :mod:`.ngspice` — ``ngspice -b`` and in-process (PySpice) runners, rawfile reading, errors;
* :mod:`.simulate` — run a netlist directory (parallel decks) into a raster and membranes;
* :mod:`.budget` — the a-priori error budget a + b·max(|v| − θ, 0) per group (derived, calibrated
  on a separate small run, written into ``core.json`` with the netlists);
* :mod:`.verify`, :mod:`.plots` — spike-for-spike check, margins, error bound, report, PNGs;
* :mod:`.eseries`, :mod:`.snap` — part values (IEC 60063 E-series, unit resistors) and the snapped core they
  compute, folded into the reference (``--snap``);
* :mod:`.bom`, :mod:`.energy` — bill of materials of a deck, energy from ngspice's source currents (``rcsnn bom``);
* :mod:`.cli` — the ``rcsnn netlist`` and ``rcsnn simulate`` subcommands.

See ``docs/analog.md``.
"""
