"""rcsnn — hardware co-design and circuit export for ternary recurrent spiking cores.

The package is laid out as the flow it implements:

* :mod:`rcsnn.model` — the trainable PyTorch model, checkpoints, the float64 and
  fixed-point reference step functions every backend is checked against;
* :mod:`rcsnn.graph` — the intermediate graph (networkx), its validation,
  (de)serialisation and NIR / snnTorch interop;
* :mod:`rcsnn.analog`, :mod:`rcsnn.digital` — the SPICE and Amaranth backends;
* :mod:`rcsnn.verify` — raster comparison, margins, reports.
"""

__version__ = "0.1.0"
