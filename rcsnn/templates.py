"""Jinja2 templates of generated code, shipped as package data: one environment for every back end.

A template ``<package>/templates/<name>`` (e.g. ``rcsnn/digital/templates/tb_rcsnn.v.j2``) reads
as the language it generates; the Python side passes only numbers and small per-design lists.
:func:`render` renders one with ``StrictUndefined`` (a missing variable is an error, never an empty
string) and no autoescaping (the output is code, not HTML): any text that did not come from the
project itself, such as a group name, must pass through :func:`c_string` to become a string literal,
and through :func:`markdown_text` to appear in Markdown.

This module imports only jinja2 and the standard library.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources

import jinja2

__all__ = ["c_string", "markdown_text", "render", "ENVIRONMENT"]

_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "?": "\\077"}


def c_string(value: str, printf: bool = False) -> str:
    """``value`` as a double-quoted C / C++ / Verilog string literal that always stays one literal.

    Printable ASCII is kept; ``\\``, ``"``, newline and tab get their backslash escapes, ``?`` is
    written ``\\077`` (no trigraphs), and every other byte of the UTF-8 encoding (control
    characters, DEL, non-ASCII) a three-digit octal escape, which both C and Verilog read as that
    byte. ``printf``: the literal is a format string (Verilog ``$write``), so ``%`` is doubled.
    A NUL character, which would cut the string short, is refused.
    """
    if not isinstance(value, str):
        raise TypeError(f"c_string: expected a str, got {type(value).__name__}")
    if "\0" in value:
        raise ValueError(f"c_string: {value!r} contains a NUL character")
    out = []
    for ch in value:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch == "%" and printf:
            out.append("%%")
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            out.extend(f"\\{b:03o}" for b in ch.encode("utf-8"))
    return '"' + "".join(out) + '"'


_MARKDOWN = str.maketrans({c: "\\" + c for c in "\\`*_{}[]<>()#+!|~"})


def markdown_text(value: str) -> str:
    """``value`` as literal Markdown text on one line (e.g. a table cell): Markdown's punctuation
    (``|``, `````, ``*``, ``_``, ``<``, ``[``, ...) backslash-escaped, control characters and line
    breaks shown as ``\\xNN`` escapes."""
    text = str(value).translate(_MARKDOWN)
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)


class _PackageTemplates(jinja2.BaseLoader):
    """Loads ``"<package>:<name>"`` from ``<package>/templates/<name>`` through importlib.resources."""

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str | None, Callable[[], bool]]:
        package, sep, name = template.partition(":")
        if not sep or not name or "/" in name or "\\" in name or name.startswith("."):
            raise jinja2.TemplateNotFound(template)
        try:
            path = resources.files(package).joinpath("templates", name)
            source = path.read_text(encoding="utf-8")
        except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):
            raise jinja2.TemplateNotFound(template) from None
        return source, str(path), lambda: True  # package data does not change under a running process


ENVIRONMENT = jinja2.Environment(
    loader=_PackageTemplates(),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
    autoescape=False,
)
ENVIRONMENT.filters["c_string"] = c_string
ENVIRONMENT.filters["markdown_text"] = markdown_text


def render(package: str, name: str, **context) -> str:
    """Render template ``name`` of ``package`` (``rcsnn/<...>/templates/<name>``) with ``context``."""
    return ENVIRONMENT.get_template(f"{package}:{name}").render(**context)
