"""Check JSON bodies against a platform's own OpenAPI 3.0 specification.

OpenAPI 3.0 schemas are almost JSON Schema; the differences that matter are turned into
JSON Schema 2020-12 once per specification:

- ``nullable: true`` also allows ``null``;
- in a request, a ``readOnly`` property must not be sent, and an object with declared
  properties accepts no others (platforms answer unknown body parameters with an error);
- ``$ref: #/components/schemas/X`` points at ``#/$defs/X``.

Specifications are read where they are kept, never copied into the repository: the
folder in ``RAPPORT_SHARED_DIR``, else ``shared/`` beside the repository, else beside the
checkout a fresh clone was made from. Without one, the tests that need it are skipped
with that reason.
"""

from __future__ import annotations

import json
import os
import subprocess
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

REPOSITORY = Path(__file__).resolve().parents[2]
COMPONENT_PREFIX = "#/components/schemas/"
# Fails for any value, naming the property (a plain ``false`` schema loses the name).
READ_ONLY = {"not": {}}


class Problem(NamedTuple):
    field: str
    message: str
    keyword: str  # the JSON Schema keyword broken: required, type, maxLength, readOnly…


def _origin_checkout() -> Path | None:
    """The local checkout this repository was cloned from, if it was."""
    try:
        url = subprocess.run(
            ["git", "-C", str(REPOSITORY), "config", "--get", "remote.origin.url"],
            capture_output=True, text=True, timeout=5, check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    path = Path(url.removeprefix("file://"))
    return path if url and path.is_absolute() and path.is_dir() else None


@cache
def shared_dir() -> Path | None:
    candidates = [REPOSITORY.parent / "shared"]
    if os.environ.get("RAPPORT_SHARED_DIR"):
        candidates.insert(0, Path(os.environ["RAPPORT_SHARED_DIR"]))
    origin = _origin_checkout()
    if origin is not None:
        candidates.append(origin.parent / "shared")
    return next((c for c in candidates if (c / "platforms").is_dir()), None)


@cache
def load_spec(relative: str) -> dict[str, Any]:
    folder = shared_dir()
    if folder is None or not (folder / relative).exists():
        import pytest

        reason = (f"no {relative}: the sandboxes check requests against the platform's own "
                  "specification, kept in shared/ beside the repository (or set "
                  "RAPPORT_SHARED_DIR)")
        print(f"\nSkipping: {reason}")
        pytest.skip(reason)
    return json.loads((folder / relative).read_text(encoding="utf-8"))


class Contract:
    """Request and response validators for the operations of one specification."""

    def __init__(self, spec: dict[str, Any]):
        self.spec = spec
        schemas = spec["components"]["schemas"]
        self._request_defs = {name: _convert(s, request=True) for name, s in schemas.items()}
        self._response_defs = {name: _convert(s, request=False) for name, s in schemas.items()}
        self._validators: dict[tuple[str, bool], Draft202012Validator] = {}

    def operation(self, method: str, path_template: str) -> dict[str, Any]:
        return self.spec["paths"][path_template][method.lower()]

    def request_schema(self, method: str, path_template: str) -> str | None:
        body = self.operation(method, path_template).get("requestBody")
        if not body:
            return None
        return _component(body["content"]["application/json"]["schema"])

    def response_schema(self, method: str, path_template: str) -> str | None:
        ok = self.operation(method, path_template)["responses"].get("200")
        if not ok or "content" not in ok:
            return None
        return _component(ok["content"]["application/json"]["schema"])

    def problems(self, name: str, document: Any, *, request: bool) -> list[Problem]:
        """Each way ``document`` breaks schema ``name``, first field first."""
        validator = self._validator(name, request)
        found = []
        for error in sorted(validator.iter_errors(document), key=lambda e: list(e.path)):
            if error.validator == "anyOf" and error.context:
                # A nullable field that is not null: the non-null branch says what is wrong.
                error = best_match(e for e in error.context if e.relative_schema_path[0] == 0)
            path = ".".join(str(part) for part in error.absolute_path)
            keyword = "readOnly" if error.validator == "not" else str(error.validator)
            found.append(Problem(path, _message(error), keyword))
        return found

    def _validator(self, name: str, request: bool) -> Draft202012Validator:
        key = (name, request)
        if key not in self._validators:
            defs = self._request_defs if request else self._response_defs
            document = {"$defs": defs, "$ref": f"#/$defs/{name}"}
            self._validators[key] = Draft202012Validator(document)
        return self._validators[key]


@cache
def contract(relative: str) -> Contract:
    return Contract(load_spec(relative))


def _component(schema: dict[str, Any]) -> str:
    return schema["$ref"].removeprefix(COMPONENT_PREFIX)


def _convert(schema: Any, *, request: bool) -> Any:
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        converted: dict[str, Any] = {"$ref": "#/$defs/" + _component(schema)}
    else:
        converted = {}
        for key, value in schema.items():
            if key in {"nullable", "readOnly", "writeOnly", "example", "description"}:
                continue
            if key.startswith("x-"):
                continue
            if key == "properties":
                converted[key] = {
                    name: _property(sub, request=request) for name, sub in value.items()
                }
            elif key in {"items", "additionalProperties", "not"}:
                converted[key] = _convert(value, request=request)
            elif key in {"allOf", "anyOf", "oneOf"}:
                converted[key] = [_convert(sub, request=request) for sub in value]
            else:
                converted[key] = value
        if request and "properties" in schema and "additionalProperties" not in schema:
            converted["additionalProperties"] = False
    if schema.get("nullable"):
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


def _property(schema: Any, *, request: bool) -> Any:
    if request and isinstance(schema, dict) and schema.get("readOnly"):
        return READ_ONLY
    return _convert(schema, request=request)


def _message(error: Any) -> str:
    if error.validator == "not" and error.validator_value == {}:
        return "is read-only and must not be sent"
    if error.validator == "additionalProperties" and error.validator_value is False:
        return error.message.replace("Additional properties are not allowed", "unknown field")
    if error.validator in {"maxLength", "minLength", "maxItems", "minItems"}:
        return f"breaks {error.validator} {error.validator_value}"
    message = error.message
    return message if len(message) <= 200 else message[:197] + "..."
