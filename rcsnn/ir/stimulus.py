"""The one stimulus type: external currents fed to a core, from a prompt, a .npy file or held-out text.

Every command that drives a core (``run``, ``netlist``, ``verilog``, ``verify``, ``generate``
on hardware) takes a :class:`Stimulus`, built and validated here once. Currents are
``x[t]`` in membrane units, ``(steps, N)`` float64, without the bias (the core adds it).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import RcsnnError
from ..text import default_text
from .graph import Graph

__all__ = ["Stimulus", "load_npy", "resolve_stimulus"]


@dataclass(frozen=True)
class Stimulus:
    """External currents of a run.

    Attributes:
        currents: ``(steps, N)`` float64, membrane units per step, without bias.
        description: how it was made (``--prompt '...'``, a file name, the sample), for reports.
        text: the characters fed one per step, for a language-model stimulus; else None.
        note: a remark for the user (e.g. that the default length was clipped), or "".
    """

    currents: np.ndarray
    description: str
    text: str | None = None
    note: str = ""

    @property
    def steps(self) -> int:
        return int(self.currents.shape[0])

    @property
    def sha256(self) -> str:
        """SHA-256 of the currents' float64 bytes (provenance in reports and sidecars)."""
        return hashlib.sha256(np.ascontiguousarray(self.currents, dtype=np.float64).tobytes()).hexdigest()

    def first(self, steps: int) -> Stimulus:
        """The first ``steps`` steps (1 ≤ steps ≤ :attr:`steps`)."""
        _positive(steps, "--steps")
        if steps > self.steps:
            raise RcsnnError(f"--steps {steps}: the stimulus has only {self.steps} steps")
        return replace(self, currents=self.currents[:steps], text=None if self.text is None else self.text[:steps])

    @classmethod
    def from_prompt(cls, graph: Graph, text: str) -> Stimulus:
        """One character of ``text`` per step through the core's token front end."""
        if not text:
            raise RcsnnError("--prompt: must not be empty")
        return cls(graph.arrays().text_currents(text), "--prompt " + repr(text), text)

    @classmethod
    def from_inputs(cls, graph: Graph, path: str | Path) -> Stimulus:
        """Input-port vectors ``u[t]`` from a ``(steps, n_in)`` .npy file."""
        core = graph.arrays()
        u = load_npy(path, (None, core.n_inputs), "steps x inputs")
        return cls(core.input_currents(u), str(path))

    @classmethod
    def from_currents(cls, graph: Graph, path: str | Path) -> Stimulus:
        """Per-neuron currents ``x[t]`` (without bias) from a ``(steps, N)`` .npy file."""
        x = load_npy(path, (None, graph.arrays().n_neurons), "steps x neurons")
        return cls(x, str(path))

    @classmethod
    def sample(cls, graph: Graph, steps: int) -> Stimulus:
        """Held-out text (the last ``steps`` characters of pydoc_data.topics) for an LM core whose
        vocabulary covers it, else N(0, 1) input vectors with seed 0."""
        _positive(steps, "--steps")
        core = graph.arrays()
        if core.frontend is not None:
            text = default_text()[-steps:]
            if set(text) <= set(core.frontend.vocab):
                return cls(core.text_currents(text), f"the last {steps} characters of pydoc_data.topics", text)
        rng = np.random.default_rng(0)
        return cls(core.input_currents(rng.standard_normal((steps, core.n_inputs))), "N(0,1) random inputs (seed 0)")


def load_npy(path: str | Path, shape: tuple[int | None, ...], meaning: str) -> np.ndarray:
    """A finite, real, numeric ``.npy`` array of ``shape`` (None: any length ≥ 1) as float64; never unpickles.

    The header is checked before the data is read: an ``.npz`` archive (or any other file) named
    ``.npy``, a dtype that is not a real number (complex, strings, structured, objects), the wrong
    number of dimensions or shape, and a header announcing more data than the file holds are each
    one :class:`RcsnnError` line naming the file.
    """
    fmt = np.lib.format
    want = "(" + ", ".join("steps" if s is None else str(s) for s in shape) + ")"
    try:
        with open(path, "rb") as f:
            if f.read(6) != b"\x93NUMPY":
                raise RcsnnError(f"{path}: not a .npy file (an .npz archive or another format?)")
            f.seek(0)
            version = fmt.read_magic(f)
            if version not in ((1, 0), (2, 0)):
                raise RcsnnError(f"{path}: .npy format version {version} is not supported (1.0 or 2.0)")
            header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            found, _fortran, dtype = header(f, max_header_size=10_000)
            if dtype.fields is not None or dtype.hasobject or dtype.kind not in "biuf":
                raise RcsnnError(f"{path}: dtype {dtype}, expected a real numeric array {meaning}")
            if len(found) != len(shape) or any(w is not None and g != w for g, w in zip(found, shape)) \
                    or found[0] < 1:
                raise RcsnnError(f"{path}: shape {found}, expected {want} ({meaning})")
            start = f.tell()
            data = f.seek(0, 2) - start
            if int(np.prod(found, dtype=object)) * dtype.itemsize > data:
                raise RcsnnError(f"{path}: header announces shape {found} of {dtype}, more than the file's {data} "
                                 "bytes of data (truncated?)")
            f.seek(0)
            a = np.load(f, allow_pickle=False)
    except RcsnnError:
        raise
    except (OSError, ValueError, EOFError, SyntaxError) as exc:
        raise RcsnnError(f"{path}: cannot read as a .npy array ({' '.join(str(exc).split())})") from None
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        t, i = np.argwhere(~np.isfinite(a))[0]
        raise RcsnnError(f"{path}: entry [{t}, {i}] is {a[t, i]}, expected finite values")
    return a


def resolve_stimulus(graph: Graph, *, prompt: str | None = None, inputs: str | None = None,
                     currents: str | None = None, steps: int | None = None, default_steps: int = 200) -> Stimulus:
    """The stimulus of a command: ``--prompt``, ``--input``, ``--currents`` or the sample.

    ``steps`` cuts an explicit stimulus (more steps than it has is an error) or sets the sample's
    length; with ``steps`` None the whole explicit stimulus is used, or ``default_steps`` of the
    sample. A default longer than a stimulus is clipped, with a note.
    """
    if steps is not None:
        _positive(steps, "--steps")
    given = [s for s in (prompt, inputs, currents) if s is not None]
    if len(given) > 1:
        raise RcsnnError("give at most one of --prompt, --input and --currents")
    if prompt is not None:
        stimulus = Stimulus.from_prompt(graph, prompt)
    elif inputs is not None:
        stimulus = Stimulus.from_inputs(graph, inputs)
    elif currents is not None:
        stimulus = Stimulus.from_currents(graph, currents)
    else:
        return Stimulus.sample(graph, steps or default_steps)
    return stimulus if steps is None else stimulus.first(steps)


def _positive(value: int, option: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise RcsnnError(f"{option} {value}: must be a whole number >= 1")
