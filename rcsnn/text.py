"""The bundled text: CPython's ``pydoc_data.topics``, present on every machine, and user text files."""

from __future__ import annotations

from pathlib import Path

from .errors import RcsnnError

__all__ = ["default_text", "read_text"]


def default_text() -> str:
    """CPython's ``pydoc_data.topics`` (~465 K characters), present on every machine."""
    from pydoc_data.topics import topics

    return "".join(topics[key] for key in sorted(topics))


def read_text(path: str | None) -> str:
    if path is None:
        return default_text()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RcsnnError(f"{path}: cannot read as UTF-8 text ({exc.__class__.__name__}: {exc})") from None
    if len(text) < 10_000:
        raise RcsnnError(f"{path}: only {len(text)} characters; training needs at least 10000")
    return text
