"""Validating a submitted survey form against one instrument.

``answer_schema(instrument).load(request.form)`` returns
``{"answers": {item_id: int | "na"}, "comment": str | None}``, ready for ``score``.
"""

from __future__ import annotations

import re

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, pre_load, validate

from .model import NOT_APPLICABLE, Instrument, Scale

COMMENT_FIELD = "comment"
COMMENT_MAX_LENGTH = 1000
_WHOLE_NUMBER = re.compile(r"-?\d{1,6}")


class AnswerField(fields.Field):
    """One item: a whole number on the scale (forms send strings), or 'na' when offered."""

    def __init__(self, scale: Scale, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale

    def _deserialize(self, value, attr, data, **kwargs):
        scale = self.scale
        if value == NOT_APPLICABLE and scale.allows_not_applicable:
            return NOT_APPLICABLE
        if isinstance(value, str) and _WHOLE_NUMBER.fullmatch(value):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            offered = f" or '{NOT_APPLICABLE}'" if scale.allows_not_applicable else ""
            raise ValidationError(f"Choose a number from {scale.min} to {scale.max}{offered}.")
        if not scale.min <= value <= scale.max:
            raise ValidationError(f"Choose a number from {scale.min} to {scale.max}.")
        return value


class AnswerFormSchema(Schema):
    """Base of every instrument's form schema; ``answer_schema`` adds one field per item."""

    class Meta:
        # The page may post other fields (a CSRF token, a submit button): not ours to judge.
        unknown = EXCLUDE

    comment = fields.String(validate=validate.Length(max=COMMENT_MAX_LENGTH))

    @pre_load
    def _drop_blanks(self, data, **kwargs):
        # An untouched radio group or an empty text box means "no answer", not "".
        cleaned = {}
        for key, value in dict(data).items():
            value = value.strip() if isinstance(value, str) else value
            if value not in ("", None):
                cleaned[key] = value
        return cleaned

    @post_load
    def _split(self, data, **kwargs):
        comment = data.pop(COMMENT_FIELD, None)
        return {"answers": data, "comment": comment}


def answer_schema(instrument: Instrument) -> Schema:
    """A schema instance for this instrument's form. Items are required unless the
    instrument tolerates missing answers (``scoring.max_missing`` above 0)."""
    required = instrument.scoring.max_missing == 0
    item_fields = {
        item.id: AnswerField(instrument.scale, required=required) for item in instrument.items
    }
    generated = AnswerFormSchema.from_dict(item_fields, name=f"AnswerForm[{instrument.id}]")
    return generated()
