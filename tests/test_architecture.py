"""The package's architecture, enforced: layers, no import cycles, no private names across packages, lint."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest
from conftest import ROOT

PACKAGE = ROOT / "rcsnn"
BIN = Path(sys.executable).parent


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(BIN / "lint-imports"), "--config", str(root / "pyproject.toml"), "--no-cache"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=300)


def test_layers_contract_is_kept():
    proc = _lint_imports(ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 kept, 0 broken" in proc.stdout


def test_an_upward_import_breaks_the_contract(tmp_path):
    """Negative control: the same contract on a copy whose IR imports the command line."""
    shutil.copytree(PACKAGE, tmp_path / "rcsnn", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    graph = tmp_path / "rcsnn" / "ir" / "graph.py"
    upward = "import networkx as nx\n\nimport rcsnn.cli.main\n"
    graph.write_text(graph.read_text().replace("import networkx as nx\n", upward, 1))
    proc = _lint_imports(tmp_path)
    assert proc.returncode != 0 and "rcsnn.ir.graph -> rcsnn.cli.main" in proc.stdout, proc.stdout


def test_no_import_cycles():
    import grimp

    imports = grimp.build_graph("rcsnn", cache_dir=None)
    g = nx.DiGraph((m, n) for m in imports.modules for n in imports.find_modules_directly_imported_by(m))
    cycle = next(iter(nx.simple_cycles(g)), None)
    assert cycle is None, " -> ".join(cycle or [])


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path, ast.parse(path.read_text(), str(path))


def _package(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:2]) if len(parts) > 2 else parts[0]


def test_no_private_name_is_used_across_packages():
    offenders = []
    for path, tree in _modules():
        here = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here.rsplit(".", node.level)[0] + ("." + node.module if node.module else "")
                else:
                    base = node.module
                if not base or not base.startswith("rcsnn"):
                    continue
                other = ".".join(base.split(".")[:2])
                for alias in node.names:
                    private = alias.name.startswith("_") and not alias.name.endswith("__")
                    if private and other != _package(path):
                        offenders.append(f"{path.relative_to(ROOT)}: {alias.name} from {base}")
    assert not offenders, offenders


def test_every_public_module_declares_all():
    missing = [str(path.relative_to(ROOT)) for path, tree in _modules()
               if not path.name.startswith("_") and not any(
                   isinstance(n, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in n.targets)
                   for n in tree.body)]
    assert not missing, missing


def test_ruff_is_clean():
    ruff = BIN / "ruff"
    if not ruff.exists():
        pytest.fail("ruff is a test dependency: pip install -e '.[test]'")
    proc = subprocess.run([str(ruff), "check", "rcsnn", "tests", "bench", "examples", "docs"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]
