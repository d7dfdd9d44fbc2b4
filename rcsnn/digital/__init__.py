"""Digital backend: an event-driven Amaranth core, its Verilog, bit-exact simulation and FPGA synthesis.

Modules: :mod:`.layout` (memory image of a core), :mod:`.accumulator`, :mod:`.neuron`,
:mod:`.synapse`, :mod:`.spikes`, :mod:`.controller`, :mod:`.core` (the components),
:mod:`.emit`/:mod:`.testbench`/:mod:`.docs` (``rcsnn verilog``), :mod:`.simulate` (Amaranth,
Verilator, Icarus runners), :mod:`.cycles` (event bound, cycle limit, timeouts), :mod:`.gate`
(the synthesised ECP5 netlist in Icarus), :mod:`.stream` (Verilator/Icarus one step per round trip,
``rcsnn generate``), :mod:`.wrapper`/:mod:`.synth` (``rcsnn synth``), :mod:`.formal` (bounded
proofs of the neuron update and the accumulator, SymbiYosys); ``rcsnn verify --backend
amaranth|verilator|icarus|gate`` is :mod:`rcsnn.verify.digital`; external tools run through :mod:`rcsnn.tools`.
"""
