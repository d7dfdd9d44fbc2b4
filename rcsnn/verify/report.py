"""The one report type of every verification, and the provenance that makes it reproducible.

A :class:`Report` is one back end judged against its reference: a PASS/FAIL verdict, the raster
comparison (0-based steps; neurons named by group, index in the group and global index), the
back end's own figures (error budgets, cycles, ngspice CPU time, ...), the files it wrote, and
:class:`Provenance`. It is written as ``report.json`` and ``report.md``; :func:`write_summary`
writes the one table of ``verify --backend all``.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shlex
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import __version__
from ..ir.stimulus import Stimulus
from .compare import Comparison

__all__ = ["Provenance", "Report", "machine", "summary_table", "write_summary"]


def machine() -> dict:
    """CPU model, logical cores and Python of this machine (figures compare across machines with it)."""
    model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(), "system": platform.platform()}


@dataclass(frozen=True)
class Provenance:
    """Where a result comes from.

    Attributes:
        core: the CORE argument (a path) and ``core_sha256`` its bytes' SHA-256.
        stimulus: the stimulus' description, ``stimulus_sha256`` its currents' SHA-256, ``steps``.
        rcsnn: this package's version; ``tools``: external tools' version lines by name.
        command: the command line; ``machine``: :func:`machine`.
    """

    core: str
    core_sha256: str
    stimulus: str
    stimulus_sha256: str
    steps: int
    rcsnn: str = __version__
    tools: dict = field(default_factory=dict)
    command: str = field(default_factory=lambda: shlex.join(["rcsnn", *sys.argv[1:]]))
    machine: dict = field(default_factory=machine)

    @classmethod
    def of(cls, core_path: str | Path, stimulus: Stimulus, tools: dict | None = None) -> Provenance:
        path = Path(core_path)
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        return cls(str(core_path), digest, stimulus.description, stimulus.sha256, stimulus.steps, tools=dict(tools or {}))


@dataclass
class Report:
    """One back end against its reference.

    Attributes:
        backend: ``spice``, ``amaranth``, ``verilator``, ``icarus``, ...
        reference: what it was compared with (``float64 reference``, ``fixed-point reference``).
        passed: the verdict.
        comparison: the raster comparison.
        lines: the back end's findings, one sentence each, for people.
        figures: the same as JSON-able numbers.
        files: paths the verification wrote (plots, waveforms, rasters).
        provenance: where it comes from.
        seconds: wall-clock seconds the back end's run took (set by the caller that timed it), or None.
    """

    backend: str
    reference: str
    passed: bool
    comparison: Comparison
    lines: list[str]
    figures: dict
    provenance: Provenance
    files: list[str] = field(default_factory=list)
    seconds: float | None = None
    directory: Path | None = field(default=None, compare=False)
    """Where :meth:`write` last wrote the report (None before)."""

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else "FAIL"

    def headline(self) -> str:
        c = self.comparison
        return (f"{self.backend}: {self.verdict} — {c.steps} steps x {c.neurons} neurons vs the {self.reference}, "
                f"{c.mismatches} mismatching events")

    def to_dict(self) -> dict:
        return {"backend": self.backend, "reference": self.reference, "verdict": self.verdict,
                "comparison": self.comparison.to_dict(), "findings": self.lines, "figures": self.figures,
                "files": self.files, "seconds": self.seconds, "provenance": asdict(self.provenance)}

    def markdown(self) -> str:
        p = self.provenance
        out = [f"# rcsnn verify — {self.backend}: **{self.verdict}**", "",
               f"- core: `{p.core}` (SHA-256 `{p.core_sha256[:16]}…`)",
               f"- stimulus: {p.stimulus}, {p.steps} steps (SHA-256 `{p.stimulus_sha256[:16]}…`)",
               f"- reference: {self.reference}", f"- command: `{p.command}`",
               f"- rcsnn {p.rcsnn}; " + "; ".join(f"{k}: {v}" for k, v in sorted(p.tools.items())),
               f"- machine: {p.machine.get('cpu')}, {p.machine.get('cores')} cores", "", "## Findings", "",
               *(f"- {line}" for line in [self.comparison.summary(), *self.lines])]
        if self.files:
            out += ["", "## Files", "", *(f"- `{f}`" for f in self.files)]
        return "\n".join(out) + "\n"

    def write(self, directory: str | Path) -> list[Path]:
        """``report.json`` and ``report.md`` in ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        paths = [directory / "report.json", directory / "report.md"]
        paths[0].write_text(json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n")
        paths[1].write_text(self.markdown())
        return paths


def summary_table(reports: list[Report]) -> str:
    """The Markdown table of ``verify --backend all``: one PASS/FAIL line per back end, then the verdict.

    ``undecidable`` counts the events whose margin to threshold is within the a-priori budget (the
    analog check lists them; they are not failed); the digital and fixed-point checks have none.
    """
    rows = []
    for r in reports:
        c = r.comparison
        undecidable = r.figures.get("undecidable")
        seconds = "—" if r.seconds is None else f"{r.seconds:.0f}" if r.seconds >= 10 else f"{r.seconds:.1f}"
        rows.append(f"| {r.backend} | {r.reference} | {c.steps} | {c.steps * c.neurons:,} | {c.mismatches} | "
                    f"{'—' if undecidable is None else len(undecidable)} | {seconds} | **{r.verdict}** |")
    passed = all(r.passed for r in reports)
    return "\n".join([f"# rcsnn verify: {'PASS' if passed else 'FAIL'}", "",
                      "| back end | reference | steps | events | mismatches | undecidable | wall s | verdict |",
                      "|---|---|---:|---:|---:|---:|---:|---|", *rows]) + "\n"


def write_summary(reports: list[Report], directory: str | Path) -> list[Path]:
    """One table for several back ends (``verify --backend all``): ``summary.md`` and ``summary.json``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    passed = all(r.passed for r in reports)
    paths = [directory / "summary.md", directory / "summary.json"]
    paths[0].write_text(summary_table(reports))
    paths[1].write_text(json.dumps({"verdict": "PASS" if passed else "FAIL",
                                    "backends": {r.backend: r.verdict for r in reports},
                                    "seconds": {r.backend: r.seconds for r in reports}}, indent=1, sort_keys=True) + "\n")
    return paths
