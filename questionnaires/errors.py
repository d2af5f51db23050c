"""The two errors the questionnaires package raises on purpose."""

from __future__ import annotations

from collections.abc import Iterable


class InstrumentError(Exception):
    """One or more instrument files are wrong.

    ``errors`` is a list of ``(file, path, message)``: the file, where in the document
    (``items[3].text.fr``, or ``line 12`` for YAML syntax), and what is wrong.
    """

    def __init__(self, errors: Iterable[tuple[str, str, str]]):
        self.errors = list(errors)
        super().__init__("\n".join(format_error(*error) for error in self.errors))


class AnswerError(ValueError):
    """An answer that no form could have produced: unknown item or value off the scale."""

    def __init__(self, item_id: str, message: str):
        self.item_id = item_id
        self.message = message
        super().__init__(f"item '{item_id}': {message}")


def format_error(file: str, path: str, message: str) -> str:
    return f"{file}: {path}: {message}" if path else f"{file}: {message}"


def format_path(path: tuple) -> str:
    """("items", 3, "text", "fr") → "items[3].text.fr"."""
    text = ""
    for segment in path:
        # YAML reads an unquoted `on`/`yes` key as True, which is an int: not a list index.
        listed = isinstance(segment, int) and not isinstance(segment, bool)
        text += f"[{segment}]" if listed else f".{segment}"
    return text.lstrip(".")
