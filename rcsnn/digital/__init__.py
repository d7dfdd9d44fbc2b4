"""Digital backend: an event-driven Amaranth core, its Verilog, bit-exact simulation and FPGA synthesis.

Modules: :mod:`.layout` (memory image of a core), :mod:`.accumulator`, :mod:`.neuron`,
:mod:`.synapse`, :mod:`.spikes`, :mod:`.controller`, :mod:`.core` (the components),
:mod:`.emit`/:mod:`.testbench`/:mod:`.docs` (``rcsnn verilog``), :mod:`.simulate` (Amaranth,
Verilator, Icarus runners), :mod:`.verify` (``rcsnn verify --backend amaranth|verilator|icarus``),
:mod:`.wrapper`/:mod:`.synth` (``rcsnn synth``); external tools run through :mod:`rcsnn.tools`.
"""
