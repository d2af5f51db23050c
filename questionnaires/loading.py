"""Reading one instrument file: YAML → schema → ``Instrument``, or precise errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml
from marshmallow import ValidationError

from .errors import InstrumentError
from .model import Instrument
from .schema import InstrumentSchema, flatten


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice (plain YAML keeps the last one silently,
    which would hide a pasted-over translation)."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key!r} is given twice (first on line {seen[key]})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def load_instrument(path: str | Path) -> Instrument:
    """Load and check one file; raise ``InstrumentError`` listing every problem found."""
    path = Path(path)
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InstrumentError([(file, "", f"cannot read the file: {error}")])
    try:
        document = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        raise InstrumentError([(file, *_yaml_problem(error))])
    return dataclasses.replace(instrument_from_document(document, file), path=path)


ACROSS_THE_FILE = (
    "the checks that span the file (references between its parts, every text in every "
    "language, placeholders left from a template, bands) run once the problems above are "
    "fixed"
)

# The parser's words for the usual slips, and what they mean to whoever edits the file.
YAML_HINTS = {
    "expected <block end>": "a line is indented more or less than the lines around it",
    "cannot start any token": "YAML indents with spaces, not tabs",
    "mapping values are not allowed here": (
        "a text holding ': ' needs quotes around it, or a line is indented further than "
        "the one before"),
    "could not find expected ':'": "a line is missing its 'name:' or a quote is not closed",
}


def _yaml_problem(error: yaml.YAMLError) -> tuple[str, str]:
    """Where the parser gave up, and what it says, with where the part it was reading
    began: an unclosed ``{`` is found lines later, but it is fixed where it opened."""
    mark = getattr(error, "problem_mark", None)
    where = _at(mark) if mark else ""
    message = f"not valid YAML: {getattr(error, 'problem', None) or error}"
    context, context_mark = getattr(error, "context", None), getattr(error, "context_mark", None)
    if context and context_mark and (mark is None or context_mark.line != mark.line):
        message += f" ({context} that starts at {_at(context_mark)})"
    elif context:
        message += f" ({context})"
    meaning = next((hint for words, hint in YAML_HINTS.items() if words in message), None)
    if meaning:
        message += f"; usually this means {meaning}"
    return where, message


def _at(mark) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"


def instrument_from_document(document: object, file: str = "<document>") -> Instrument:
    """Check an already-parsed document (a dict as YAML or JSON gives it)."""
    if not isinstance(document, dict):
        raise InstrumentError([(file, "", "the document must be a mapping of fields")])
    schema = InstrumentSchema()
    try:
        return schema.load(document)
    except ValidationError as error:
        messages = error.messages if isinstance(error.messages, dict) else {"": error.messages}
        found = flatten(messages, document=document)
        if not getattr(schema, "checked_across", False):
            found.append(("", ACROSS_THE_FILE))
        raise InstrumentError([(file, path, message) for path, message in found])
