"""The marshmallow schema of an instrument file (the format is described in README.md).

Field-level shape is checked here; checks that span the document (references, every
language present, bands covering the scale) live in ``consistency.py`` and run from
``InstrumentSchema``'s schema validator, so ``InstrumentSchema().load(document)`` either
returns a complete, consistent ``Instrument`` or raises one ``ValidationError``.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from .consistency import problems
from .errors import format_path
from .model import (
    COMPARATORS,
    Band,
    Bands,
    Condition,
    FlagRule,
    Instrument,
    Item,
    Scale,
    Scoring,
    Subscale,
    TalkingPointRule,
)

ID = validate.Regexp(
    r"^[a-z0-9][a-z0-9_-]{0,63}$",
    error="use 1–64 lowercase letters, digits, '-' or '_', starting with a letter or digit",
)
LANGUAGE = validate.Regexp(
    r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$", error="not a language code such as 'en' or 'fr-CA'"
)
SUBJECTS = ("flag", "subscale", "item", "any_item", "overall", "change")
NARROWED_FLAGS = ("low_subscale", "drop")
"""Built-in flags a condition may narrow to one subscale (``subscale: ID``)."""


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("is empty")


def texts(**kwargs: Any) -> fields.Dict:
    """One non-empty string per language code."""
    return fields.Dict(
        keys=fields.String(validate=LANGUAGE),
        values=fields.String(validate=_not_blank),
        **kwargs,
    )


def point_labels(**kwargs: Any) -> fields.Dict:
    return fields.Dict(keys=fields.Integer(strict=True), values=texts(), **kwargs)


class Version(fields.Field):
    """``version: 2`` or ``version: "2026.1"``; kept as a string."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip():
            raise ValidationError("must be a whole number or a text, such as 2 or '2026.1'")
        return str(value).strip()


class ScaleSchema(Schema):
    min = fields.Integer(strict=True, required=True)
    max = fields.Integer(strict=True, required=True)
    labels = point_labels(required=True)
    not_applicable = texts()

    @validates_schema(skip_on_field_errors=True)
    def _range(self, data, **kwargs):
        if data["min"] >= data["max"]:
            raise ValidationError("must be above min", "max")

    @post_load
    def _build(self, data, **kwargs):
        return Scale(**data)


class SubscaleSchema(Schema):
    id = fields.String(required=True, validate=ID)
    title = texts(required=True)
    long_title = texts()

    @post_load
    def _build(self, data, **kwargs):
        return Subscale(**data)


class ItemSchema(Schema):
    id = fields.String(required=True, validate=ID)
    subscale = fields.String()
    text = texts(required=True)
    reverse = fields.Boolean(load_default=False)
    labels = point_labels()
    concern = texts()

    @post_load
    def _build(self, data, **kwargs):
        return Item(**data)


class ScoringSchema(Schema):
    method = fields.String(required=True, validate=validate.OneOf(["sum", "mean"]))
    max_missing = fields.Integer(strict=True, load_default=0, validate=validate.Range(min=0))
    fill = fields.String(load_default="mean", validate=validate.OneOf(["mean", "subscale_mean"]))

    @post_load
    def _build(self, data, **kwargs):
        return Scoring(**data)


class BandSchema(Schema):
    id = fields.String(required=True, validate=ID)
    start = fields.Float(required=True, data_key="from", allow_nan=False)
    end = fields.Float(required=True, data_key="to", allow_nan=False)
    label = texts(required=True)

    @validates_schema(skip_on_field_errors=True)
    def _order(self, data, **kwargs):
        if data["start"] >= data["end"]:
            raise ValidationError("must be above 'from'", "to")

    @post_load
    def _build(self, data, **kwargs):
        return Band(**data)


class BandsSchema(Schema):
    score = fields.String(load_default="normalized", validate=validate.OneOf(["normalized", "raw"]))
    ranges = fields.List(fields.Nested(BandSchema), required=True, validate=validate.Length(min=1))

    @post_load
    def _build(self, data, **kwargs):
        return Bands(score=data["score"], ranges=tuple(data["ranges"]))


class ConditionSchema(Schema):
    flag = fields.String(validate=ID)
    subscale = fields.String()
    item = fields.String()
    any_item = fields.Boolean(validate=validate.Equal(True, error="write 'any_item: true'"))
    overall = fields.Boolean(validate=validate.Equal(True, error="write 'overall: true'"))
    change = fields.String(validate=validate.OneOf(["previous", "baseline"]))
    raw = fields.Boolean(load_default=False)
    below = fields.Float(allow_nan=False)
    at_most = fields.Float(allow_nan=False)
    above = fields.Float(allow_nan=False)
    at_least = fields.Float(allow_nan=False)

    @staticmethod
    def _subjects(data: dict) -> list[str]:
        found = [name for name in SUBJECTS if name in data]
        # `flag: low_subscale` or `flag: drop` may narrow to one subscale; then `subscale`
        # is no subject.
        return ["flag"] if found == ["flag", "subscale"] else found

    @validates_schema(skip_on_field_errors=True)
    def _shape(self, data, **kwargs):
        subjects = self._subjects(data)
        if len(subjects) != 1:
            raise ValidationError(f"give exactly one of {', '.join(SUBJECTS)}")
        subject = subjects[0]
        compared = [name for name in COMPARATORS if name in data]
        if subject == "flag":
            if compared:
                raise ValidationError("a flag condition takes no below/at_most/above/at_least")
            if "subscale" in data and data["flag"] not in NARROWED_FLAGS:
                raise ValidationError(
                    "'subscale' narrows only 'flag: low_subscale' and 'flag: drop'", "subscale")
        elif not compared:
            raise ValidationError(f"add at least one of {', '.join(COMPARATORS)}")
        if data["raw"] and subject not in ("subscale", "overall"):
            raise ValidationError("'raw' applies only to subscale and overall", "raw")

    @post_load
    def _build(self, data, **kwargs):
        subject = self._subjects(data)[0]
        target = data.get(subject) if subject in ("flag", "subscale", "item", "change") else None
        return Condition(
            subject=subject,
            target=target,
            comparisons=tuple((name, data[name]) for name in COMPARATORS if name in data),
            raw=data["raw"],
            subscale=data.get("subscale") if subject == "flag" else None,
        )


class TalkingPointSchema(Schema):
    id = fields.String(required=True, validate=ID)
    when = fields.Nested(ConditionSchema, required=True)
    priority = fields.Integer(strict=True, required=True, validate=validate.Range(min=1))
    text = texts(required=True)

    @post_load
    def _build(self, data, **kwargs):
        return TalkingPointRule(**data)


class FlagRuleSchema(Schema):
    code = fields.String(required=True, validate=ID)
    when = fields.Nested(ConditionSchema, required=True)
    message = texts(required=True)

    @post_load
    def _build(self, data, **kwargs):
        return FlagRule(**data)


class InstrumentSchema(Schema):
    id = fields.String(required=True, validate=ID)
    version = Version(required=True)
    title = texts(required=True)
    intro = texts()
    source = fields.String()
    languages = fields.List(
        fields.String(validate=LANGUAGE), required=True, validate=validate.Length(min=1)
    )
    scale = fields.Nested(ScaleSchema, required=True)
    subscales = fields.List(fields.Nested(SubscaleSchema), load_default=list)
    items = fields.List(fields.Nested(ItemSchema), required=True, validate=validate.Length(min=1))
    scoring = fields.Nested(ScoringSchema, required=True)
    bands = fields.Nested(BandsSchema)
    flags = fields.List(fields.Nested(FlagRuleSchema), load_default=list)
    talking_points = fields.List(fields.Nested(TalkingPointSchema), load_default=list)
    positive = texts()
    comment_question = texts()

    @staticmethod
    def _instrument(data: dict) -> Instrument:
        values = {
            key: tuple(value) if isinstance(value, list) else value for key, value in data.items()
        }
        return Instrument(**values)

    @validates_schema(skip_on_field_errors=True)
    def _consistent(self, data, **kwargs):
        self.checked_across = True
        found = problems(self._instrument(data))
        if found:
            raise ValidationError(_nest(found))

    @post_load
    def _build(self, data, **kwargs):
        return self._instrument(data)


def _nest(found: list[tuple[tuple, str]]) -> dict:
    """[(("items", 3, "text", "fr"), "missing")] → {"items": {3: {"text": {"fr": [...]}}}}.

    A message about a part that also has errors inside goes under "_schema", as
    marshmallow itself does."""
    nested: dict = {}
    for path, message in found:
        node = nested
        for segment in path[:-1]:
            child = node.get(segment)
            if isinstance(child, list):
                child = node[segment] = {"_schema": child}
            node = child if child is not None else node.setdefault(segment, {})
        leaf = node.setdefault(path[-1], [])
        (leaf.setdefault("_schema", []) if isinstance(leaf, dict) else leaf).append(message)
    return nested


_ABSENT = object()


def flatten(errors: dict, prefix: tuple = (), document: object = _ABSENT) -> list[tuple[str, str]]:
    """marshmallow's nested error dict → [("items[3].text.fr", "message"), ...].

    With the ``document`` that was loaded, a problem about a value or key that YAML
    read as true/false (an unquoted ``no`` in ``languages``, ``on:`` as a text key)
    says so, and how to quote it."""
    flat: list[tuple[str, str]] = []
    for key, value in errors.items():
        path = prefix if key == "_schema" else (*prefix, key)
        node = document if key == "_schema" else _child(document, key)
        if isinstance(value, dict) and value and set(value) <= {"key", "value"}:
            # A mapping's own errors: {"key": [...], "value": {...}} under the bad key.
            hint = _key_hint(key)
            flat += [
                (format_path(path), f"not a valid key: {m}{hint}") for m in value.get("key", [])
            ]
            if value.get("key"):
                continue  # what a wrong key holds is beside the point
            value = value.get("value", {})
            flat += (
                flatten(value, path, node)
                if isinstance(value, dict)
                else _leaves(path, value, node)
            )
        elif isinstance(value, dict):
            flat += flatten(value, path, node)
        else:
            flat += _leaves(path, value, node)
    return flat


def _child(node: object, key: object) -> object:
    """``node[key]`` in the loaded document, or _ABSENT when there is no such part."""
    if isinstance(node, dict) and key in node:
        return node[key]
    if isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
        return node[key]
    return _ABSENT


PLAIN_MESSAGES = {
    "Missing data for required field.": "required field is missing",
    "Unknown field.": "unknown field (see questionnaires/README.md for the fields)",
}


YAML_BOOLEAN_HINT = (
    ' (YAML reads unquoted yes/no/on/off as true/false: put it in quotes, as in "no")'
)


# What marshmallow says when a value is not of the type a field takes. Only then can a
# true/false that YAML made of an unquoted word be what went wrong.
TYPE_MESSAGES = {"Not a valid string.", "Not a valid integer.", "Not a valid number.",
                 "Not a valid list.", "Not a valid mapping type."}


def _key_hint(key: object) -> str:
    if isinstance(key, bool):
        return YAML_BOOLEAN_HINT
    if isinstance(key, str) and key.strip().lstrip("-").isdigit():
        return f" (a point of the scale is a number: write {key.strip()}: without quotes)"
    return ""


def _leaves(path: tuple, messages: list | str, node: object = _ABSENT) -> list[tuple[str, str]]:
    listed = messages if isinstance(messages, list) else [messages]
    key_read_as_boolean = any(isinstance(part, bool) for part in path)

    def hint(message: str) -> str:
        if key_read_as_boolean or (isinstance(node, bool) and message in TYPE_MESSAGES):
            return YAML_BOOLEAN_HINT
        return ""

    return [(format_path(path), PLAIN_MESSAGES.get(str(m), str(m)) + hint(str(m)))
            for m in listed]
