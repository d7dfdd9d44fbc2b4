"""User-facing errors: one line that names the file, key and problem."""

__all__ = ["RcsnnError", "fail"]


class RcsnnError(Exception):
    """An error the user can act on; the CLI prints it as one line, no traceback."""


def fail(where: str, problem: str) -> "RcsnnError":
    """Build an :class:`RcsnnError` reading ``"<where>: <problem>"``."""
    return RcsnnError(f"{where}: {problem}")
