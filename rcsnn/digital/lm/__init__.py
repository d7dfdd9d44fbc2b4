"""The language model on chip (``rcsnn verilog CORE --lm``): the core inside a top that embeds, reads out and chooses.

Modules: :mod:`.image` (ROM contents and widths from :func:`rcsnn.model.lm_fixed.fixed_lm`),
:mod:`.top` (the Amaranth component :class:`~rcsnn.digital.lm.top.LanguageModelTop`), :mod:`.run`
(it in Amaranth's simulator and, emitted, in Verilator), :mod:`.emit` (its harness, ``design.json``
entry and README section; :func:`rcsnn.digital.emit.emit` with ``lm=`` writes them). The integer
model it must equal byte for byte is :mod:`rcsnn.model.lm_fixed`; :mod:`rcsnn.verify.lm` compares.
"""

__all__: list[str] = []
