"""Deliveries for the webhook fuzz: each platform's recorded bodies (tests/fixtures),
mutated by hypothesis — values of another type, huge and negative numbers, deep nesting,
NUL and lone surrogates, times in year 1 and 9999 with offsets, keys dropped and added,
bodies cut short or with bytes flipped — with odd headers besides (a wrong or missing
content type, unknown and duplicate names, latin-1 values).

A case is sent validly signed (the parser is reached: the half that matters) or
unsigned, or signed with another key. The endpoints, their clinics and the checks live
in :mod:`tests.support.fuzz_run`; both bench/fuzz.py and tests/flows/test_fuzz.py use
them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

from hypothesis import strategies as st

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SIGNED, UNSIGNED, FORGED = "signed", "unsigned", "forged"


@dataclass
class Delivery:
    """One fuzzed request, before it is signed: its body, the headers besides the
    signature, and how it is to be signed."""

    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)
    signing: str = SIGNED
    content_type: str | None = None  # None: the platform's own
    delivery_id: str = ""  # the generic webhook-id header


def json_fixtures(platform: str) -> list:
    return [json.loads(path.read_text(encoding="utf-8"))
            for path in sorted((FIXTURES / platform).glob("*.json"))]


def form_fixtures(platform: str) -> list[list[tuple[str, str]]]:
    return [parse_qsl(path.read_text(encoding="utf-8").strip(), keep_blank_values=True)
            for path in sorted((FIXTURES / platform).glob("*.txt"))]


# --- values ----------------------------------------------------------------------------

YEARS = st.sampled_from(["0001-01-01T00:00:00+05:00", "0001-01-01T00:00:00-14:00",
                         "9999-12-31T23:59:59-05:00", "9999-12-31T23:59:59+14:00",
                         "9999-12-31T23:59:59Z", "9999-12-31T23:59:59.999999",
                         "0000-00-00T00:00:00Z", "2026-02-30T10:00:00Z",
                         "2026-11-25T25:61:00Z", "2026-11-25T14:00:00+99:00",
                         "2026-11-25", "1969-12-31T23:59:59Z", "2500-01-01T10:00:00Z",
                         "+002026-11-25T14:00:00Z", "2026-W48-3", "now"])
NUMBERS = st.one_of(st.integers(), st.integers(min_value=-(10 ** 400), max_value=10 ** 400),
                    st.sampled_from([0, -1, 2 ** 31, 2 ** 63, -(2 ** 63) - 1, 10 ** 30]),
                    st.floats(allow_nan=True, allow_infinity=True))
ODD_TEXT = st.sampled_from(["", " ", "\x00", "a\x00b", "\ud800", "x\udfffy", "\ufeff",
                            "🌿" * 50, "\u202e", "%00", "null", "true", "[]", "{}",
                            "A" * 70_000, "<script>", "../../etc/passwd", "-99",
                            "sam@example.com\x00", "sam@@example.com", "@", "1e999",
                            "NaN", "0x10", "٣", "١٢٣"])
TEXT = st.one_of(st.text(max_size=40), ODD_TEXT, YEARS)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=10)


def deep(depth: int, leaf=1):
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


DEPTHS = st.sampled_from([50, 500, 990, 2000, 100_000])


# --- JSON mutations ----------------------------------------------------------------------


def _paths(document, depth: int = 12) -> list[tuple]:
    """The places in a JSON document (the root excluded) down to ``depth`` levels."""
    found, todo = [], [((), document)]
    while todo:
        prefix, value = todo.pop()
        if len(prefix) >= depth:
            continue
        items = (value.items() if isinstance(value, dict)
                 else enumerate(value) if isinstance(value, list) else ())
        for key, item in items:
            found.append((*prefix, key))
            todo.append(((*prefix, key), item))
    return found


def _parent(document, path):
    for key in path[:-1]:
        document = document[key]
    return document


FRESH = ("event_id", "messageId")  # Square's and Mindbody's delivery ids


def _alike(value) -> st.SearchStrategy:
    """Another value of the same JSON type."""
    if isinstance(value, bool) or value is None:
        return st.one_of(st.none(), st.booleans())
    if isinstance(value, int):
        return NUMBERS.filter(lambda n: isinstance(n, int)) | st.integers(-5, 10 ** 6)
    if isinstance(value, float):
        return NUMBERS
    if isinstance(value, str):
        return st.one_of(TEXT, st.text(alphabet=st.characters(codec="utf-8"), max_size=300),
                         st.just(value + "\x00"), st.just(value * 50))
    return VALUES


@st.composite
def mutated_document(draw, documents: list):
    """A fixture's JSON with a fresh delivery id (so that it is stored, and its jobs run),
    changed in up to four places: often a value of the same type (text made odd, another
    number), else one of another type, a key dropped or added, a value nested deep, a
    time out of range, or the whole document replaced."""
    document = json.loads(json.dumps(draw(st.sampled_from(documents))))
    for name in FRESH:
        if isinstance(document, dict) and name in document:
            document[name] = draw(st.uuids()).hex
    for _ in range(draw(st.sampled_from([0, 1, 1, 1, 2, 2, 3, 4]))):
        paths = _paths(document)
        how = draw(st.sampled_from(["alike"] * 4 + ["replace"] * 2 + [
            "drop", "add", "nest", "time", "root"]))
        if how == "root" or not paths:
            document = draw(st.one_of(VALUES, st.builds(deep, DEPTHS)))
            continue
        path = draw(st.sampled_from(paths))
        parent = _parent(document, path)
        if how == "drop":
            del parent[path[-1]]
        elif how == "add" and isinstance(parent, dict):
            parent[draw(st.one_of(st.text(max_size=12), ODD_TEXT))] = draw(VALUES)
        elif how == "nest":
            parent[path[-1]] = deep(draw(DEPTHS), parent[path[-1]])
        elif how == "time":
            parent[path[-1]] = draw(YEARS)
        elif how == "alike":
            parent[path[-1]] = draw(_alike(parent[path[-1]]))
        else:
            parent[path[-1]] = draw(VALUES)
        if not isinstance(document, (dict, list)):
            break
    return document


def _dumps(document) -> bytes:
    try:
        return json.dumps(document, ensure_ascii=False).encode("utf-8", "surrogatepass")
    except RecursionError:
        # Deeper than the encoder walks: nesting as deep, spelled out.
        return b"[" * 100_000 + b"1" + b"]" * 100_000


@st.composite
def json_body(draw, documents: list) -> bytes:
    document = draw(mutated_document(documents))
    ascii_only = draw(st.booleans())
    try:
        if ascii_only:
            return json.dumps(document).encode()  # lone surrogates as \ud800 escapes
    except RecursionError:
        pass
    return _dumps(document)


# --- form mutations (Acuity) -------------------------------------------------------------

FORM_TEXT = st.one_of(st.text(max_size=30), ODD_TEXT, YEARS,
                      NUMBERS.map(str), st.sampled_from(["[" * 5000, "%5B" * 3000, "9" * 40]))


@st.composite
def form_body(draw, forms: list) -> bytes:
    fields = list(draw(st.sampled_from(forms)))
    for _ in range(draw(st.sampled_from([0, 1, 1, 1, 2, 3, 4]))):
        how = draw(st.sampled_from(["replace", "replace", "drop", "add", "repeat", "raw"]))
        index = draw(st.integers(min_value=0, max_value=max(0, len(fields) - 1)))
        if how == "replace" and fields:
            fields[index] = (fields[index][0], draw(FORM_TEXT))
        elif how == "drop" and fields:
            del fields[index]
        elif how == "add":
            fields.append((draw(st.one_of(st.text(max_size=10), ODD_TEXT)), draw(FORM_TEXT)))
        elif how == "repeat" and fields:
            fields.append((fields[index][0], draw(FORM_TEXT)))
        elif how == "raw":
            return draw(st.one_of(st.binary(max_size=200), json_body(json_fixtures("acuity"))))
    return urlencode([(k.encode("utf-8", "surrogatepass"), v.encode("utf-8", "surrogatepass"))
                      for k, v in fields]).encode()


# --- bytes and headers ------------------------------------------------------------------


@st.composite
def damaged(draw, body: bytes) -> bytes:
    """The body as sent: mostly whole, else cut short, with bytes flipped or inserted."""
    how = draw(st.sampled_from(["whole"] * 10 + ["cut", "flip", "insert", "empty", "bom"]))
    if how == "cut" and body:
        return body[:draw(st.integers(min_value=0, max_value=len(body) - 1))]
    if how == "flip" and body:
        data = bytearray(body)
        for _ in range(draw(st.integers(min_value=1, max_value=5))):
            at = draw(st.integers(min_value=0, max_value=len(data) - 1))
            data[at] ^= draw(st.integers(min_value=1, max_value=255))
        return bytes(data)
    if how == "insert":
        at = draw(st.integers(min_value=0, max_value=len(body)))
        return body[:at] + draw(st.sampled_from([b"\x00", b"\xff\xfe", b"\xed\xa0\x80",
                                                 b"\xc0\xaf", b"\r\n", b"}"])) + body[at:]
    if how == "empty":
        return b""
    if how == "bom":
        return b"\xef\xbb\xbf" + body
    return body


HEADER_NAMES = st.sampled_from(["X-Forwarded-For", "Content-Encoding", "X-Request-Id",
                                "Accept", "User-Agent", "Cookie", "Authorization", "X-Odd",
                                "Webhook-Timestamp", "X-Square-Hmacsha256-Signature",
                                "X-Mindbody-Signature", "X-Acuity-Signature"])
SIGNING_HEADERS = ("webhook-", "signature")
HEADER_VALUES = st.one_of(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255),
                                  max_size=40),
                          st.sampled_from(["gzip", "chunked", "", "é" * 10, "a" * 8000]))
CONTENT_TYPES = st.sampled_from([None, None, None, "", "text/plain", "application/json",
                                 "application/x-www-form-urlencoded", "multipart/form-data",
                                 "application/json; charset=latin-1", "*/*;;;",
                                 "application/json; charset=\u00e9"])


@st.composite
def deliveries(draw, body_strategy) -> Delivery:
    """A delivery to one platform's endpoint: signed two times in three, else unsigned or
    signed with another key; one in ten reuses a delivery id (the generic webhook-id)."""
    body = draw(damaged(draw(body_strategy)))
    signing = draw(st.sampled_from([SIGNED, SIGNED, SIGNED, SIGNED, UNSIGNED, FORGED]))
    headers = draw(st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=3))
    if signing == SIGNED:
        # Odd headers beside a valid signature, never in place of one.
        headers = [(name, value) for name, value in headers
                   if not any(part in name.lower() for part in SIGNING_HEADERS)]
    return Delivery(body=body, headers=headers, signing=signing,
                    content_type=draw(CONTENT_TYPES),
                    delivery_id=draw(st.sampled_from(["msg_dup"] + [""] * 9))
                    or f"msg_{draw(st.uuids()).hex}")
