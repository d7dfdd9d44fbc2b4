"""Files rcsnn writes and reads back: outputs written whole or not at all, SHA-256 manifests, typed JSON fields.

Outputs. Every command's output is written into a temporary sibling of its path (``.NAME.XXXX.part``)
and renamed into place only when complete (:func:`atomic_file`, :func:`atomic_directory`), so an
error or Ctrl-C leaves the old output or none, never a mix: a directory output replaces the old
directory as a whole (no stale file of an earlier run survives), and a non-empty directory that
rcsnn did not write (none of its ``owned`` marker files is there) is refused. :func:`check_output`
makes the same checks up front, so that a command can fail before its long work.

Read back. A directory that rcsnn reads back (netlists, an emitted design) records the SHA-256 of
every file in its sidecar (:func:`manifest`); :func:`check_manifest` refuses a directory whose
files differ unless the user trusts the edits. :func:`read_json` and :func:`field` give one-line
errors naming the file, the key and the problem for a missing, broken or mistyped JSON document.

This module imports only the standard library and :mod:`rcsnn.errors`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import secrets
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import RcsnnError

__all__ = ["check_output", "atomic_file", "atomic_directory", "sha256_file", "manifest", "check_manifest",
           "relocate_text", "snapshot", "written_since", "read_json", "field"]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _real(path: str | Path) -> Path:
    """``path`` made absolute without resolving its last component (a symlink output is replaced, not followed)."""
    path = Path(os.path.abspath(path))
    return path.parent.resolve() / path.name


def _existing_ancestor(path: Path) -> Path:
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return parent


def _probe(directory: Path, shown: Path) -> None:
    """Raise the one-line error a write into ``directory`` would fail with (read-only, not a directory, ...)."""
    if not directory.is_dir():
        raise RcsnnError(f"{shown}: {directory} is not a directory")
    try:
        fd, name = tempfile.mkstemp(prefix=".rcsnn-probe.", dir=directory)
    except OSError as exc:
        raise RcsnnError(f"{shown}: cannot write in {directory} ({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(name)


def _owned(path: Path, owned: Iterable[str]) -> bool:
    return any(next(path.glob(pattern), None) is not None for pattern in owned)


def check_output(path: str | Path, *, directory: bool = False, owned: Iterable[str] = ()) -> Path:
    """Raise a one-line :class:`RcsnnError` now if ``path`` cannot be written as an output later.

    A file output needs an existing, writable parent directory and must not be a directory. A
    directory output's missing parents are created when it is written (the nearest existing one must
    be writable); it must not be an existing file, nor a non-empty directory holding none of the
    ``owned`` glob patterns (the files by which rcsnn recognises its own output), nor the current
    directory or one above it. Returns ``path`` as given.
    """
    shown = Path(path)
    real = _real(path)
    if directory:
        if real.exists() and not real.is_dir():
            raise RcsnnError(f"{shown}: exists and is not a directory; give a directory path for the output")
        if real.is_dir():
            cwd = Path.cwd().resolve()
            if real.resolve() == cwd or real.resolve() in cwd.parents:
                raise RcsnnError(f"{shown}: is the current directory or above it; give a new directory for the output")
            if any(real.iterdir()) and not _owned(real, owned):
                marks = ", ".join(owned)
                raise RcsnnError(f"{shown}: a non-empty directory that rcsnn did not write (no {marks}); "
                                 "give a new or empty directory, or remove it first")
        _probe(_existing_ancestor(real), shown)
    else:
        if real.is_dir():
            raise RcsnnError(f"{shown}: is a directory; give a file path for the output")
        if not real.parent.exists():
            raise RcsnnError(f"{shown}: directory {real.parent} does not exist")
        _probe(real.parent, shown)
    return shown


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold a Ctrl-C (SIGINT) that arrives inside the block until it ends (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda *_: caught.append(True))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to write; it replaces ``path`` only if the block completes.

    ``path`` is checked first (:func:`check_output`). On any exception, Ctrl-C included, the
    temporary file is removed and ``path`` is left as it was. The file gets the usual permissions
    (0666 less the umask).
    """
    check_output(path)
    real = _real(path)
    fd, name = tempfile.mkstemp(prefix=f".{real.name}.", suffix=".part", dir=real.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, real)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_directory(path: str | Path, owned: Iterable[str]) -> Iterator[Path]:
    """Yield a new temporary sibling directory of ``path``; it replaces ``path`` as a whole only if the block completes.

    ``path`` is checked first (:func:`check_output` with ``owned``: a non-empty directory rcsnn did
    not write is refused). On any exception, Ctrl-C included, the temporary directory is removed
    and ``path`` is left as it was. The swap of the old directory for the new one is two renames
    with Ctrl-C held back between them, so an interrupted command leaves the old output or the
    new one, never a mix or nothing.
    """
    owned = tuple(owned)
    check_output(path, directory=True, owned=owned)
    real = _real(path)
    real.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{real.name}.", suffix=".part", dir=real.parent))
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        yield tmp
        check_output(path, directory=True, owned=owned)  # the old output may have changed meanwhile
        with _sigint_deferred():
            old = None
            if real.exists():
                old = real.with_name(f".{real.name}.{secrets.token_hex(4)}.old")
                os.rename(real, old)
            try:
                os.rename(tmp, real)
            except BaseException:
                if old is not None:
                    os.rename(old, real)
                raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def relocate_text(directory: str | Path, old: str, new: str, suffixes: tuple[str, ...] = (".json", ".md")) -> None:
    """Replace the path ``old`` by ``new`` in the text files (by suffix) below ``directory``.

    For an :func:`atomic_directory` whose files name their own paths (reports listing the files
    they wrote): written under the temporary name, they are made to name the final one before the
    swap. The JSON-escaped form of ``old`` is replaced too.
    """
    pairs = [(old, new), (json.dumps(old)[1:-1], json.dumps(new)[1:-1])]
    for path in Path(directory).rglob("*"):
        if path.suffix in suffixes and path.is_file():
            text = original = path.read_text(encoding="utf-8", errors="surrogateescape")
            for a, b in pairs:
                text = text.replace(a, b)
            if text != original:
                path.write_text(text, encoding="utf-8", errors="surrogateescape")


def sha256_file(path: str | Path) -> str:
    """SHA-256 (hex) of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def manifest(directory: str | Path, names: Iterable[str]) -> dict[str, str]:
    """``{name: SHA-256}`` of the files ``names`` (paths relative to ``directory``, ``/``-separated), sorted."""
    directory = Path(directory)
    return {name: sha256_file(directory / name) for name in sorted(names)}


def snapshot(directory: str | Path) -> dict[str, tuple[int, ...]]:
    """The state of every file below ``directory`` (for :func:`written_since`)."""
    directory = Path(directory)
    out = {}
    for path in directory.rglob("*"):
        if path.is_file():
            st = path.stat()
            out[path.relative_to(directory).as_posix()] = (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)
    return out


def written_since(directory: str | Path, before: dict[str, tuple[int, ...]]) -> list[str]:
    """Files below ``directory`` created or rewritten since ``before = snapshot(directory)``, sorted."""
    return sorted(name for name, state in snapshot(directory).items() if before.get(name) != state)


def check_manifest(directory: str | Path, recorded, where: str, *, trust_edits: bool = False,
                   rewrite: str = "") -> None:
    """Check that every file of a :func:`manifest` is in ``directory`` with the recorded SHA-256.

    ``where`` names the sidecar (for messages), ``rewrite`` the command that writes the directory
    again. With ``trust_edits`` the hashes are not compared (a user runs hand-edited files), but
    every file must still exist. A missing or malformed manifest is an error either way unless
    ``trust_edits``.
    """
    directory = Path(directory)
    again = f"; write it again ({rewrite})" if rewrite else ""
    if not isinstance(recorded, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in recorded.items()):
        if trust_edits:
            return
        raise RcsnnError(f"{where}: key 'files' (SHA-256 of every file) is missing or malformed (written by an older "
                         f"rcsnn?){again}, or pass --trust-edits to use the files as they are")
    for name, digest in recorded.items():
        path = directory / name
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise RcsnnError(f"{where}: key 'files': {name!r} is not a file of {directory}")
        if not path.is_file():
            raise RcsnnError(f"{path}: missing file (listed in {where}){again}")
        if not trust_edits and sha256_file(path) != digest:
            raise RcsnnError(f"{path}: edited since it was written (SHA-256 differs from {where}); a netlist or design "
                             f"directory is code that simulators run: check the edit and pass --trust-edits to use it"
                             f"{again and ', or' + again[1:]}")


def read_json(path: str | Path, what: str, hint: str = "") -> dict:
    """A JSON object from ``path``; a missing, unreadable, broken or non-object file is one :class:`RcsnnError` line."""
    later = f"; {hint}" if hint else ""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RcsnnError(f"{path}: cannot read the {what} (no such file){later}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RcsnnError(f"{path}: cannot read the {what} ({getattr(exc, 'strerror', None) or exc}){later}") from None
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise RcsnnError(f"{path}: the {what} is not valid JSON ({exc}){later}") from None
    if not isinstance(doc, dict):
        raise RcsnnError(f"{path}: the {what} is a JSON {type(doc).__name__}, not an object{later}")
    return doc


_KINDS = {"int": "a whole number", "number": "a finite number", "str": "a string", "bool": "true or false",
          "list": "a list", "dict": "an object"}
_MISSING = object()


def field(doc, key: str, kind: str, where: str, *, default=_MISSING, minimum: float | None = None,
          label: str | None = None):
    """``doc[key]`` checked to be of ``kind`` (``int``, ``number``, ``str``, ``bool``, ``list``, ``dict``).

    ``number`` accepts ints and floats (not booleans) and returns a finite float; ``int`` refuses
    booleans and floats; ``minimum`` bounds numbers from below. A missing key, or one whose value is
    null, returns ``default`` if given. Errors are one line: ``"<where>: key '<label or key>' ..."``.
    """
    name = label or key
    if not isinstance(doc, dict):
        raise RcsnnError(f"{where}: expected an object holding key {name!r}, found {type(doc).__name__}")
    if key not in doc or (doc[key] is None and default is not _MISSING):
        if default is not _MISSING:
            return default
        raise RcsnnError(f"{where}: key {name!r} is missing")
    value = doc[key]
    ok = {"int": isinstance(value, int) and not isinstance(value, bool),
          "number": isinstance(value, (int, float)) and not isinstance(value, bool),
          "str": isinstance(value, str), "bool": isinstance(value, bool), "list": isinstance(value, list),
          "dict": isinstance(value, dict)}[kind]
    if kind == "number" and ok:
        try:
            value = float(value)
        except OverflowError:
            ok = False
        else:
            ok = math.isfinite(value)
    if not ok:
        shown = repr(value)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        raise RcsnnError(f"{where}: key {name!r} = {shown}: expected {_KINDS[kind]}")
    if minimum is not None and value < minimum:
        raise RcsnnError(f"{where}: key {name!r} = {value}: must be >= {minimum:g}")
    return value
