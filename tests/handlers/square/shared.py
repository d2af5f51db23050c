"""What the Square adapter's tests share besides fixtures: a hand-made note, a known
moment, and where a customer lives in Square's API."""

from __future__ import annotations

from datetime import UTC, datetime

from handlers.base import Note

START, END = "[Rapport]", "[/Rapport]"
NOW = datetime(2026, 11, 25, 15, 30, tzinfo=UTC)


def note(body: str = "Alliance 82/100 ▂▅▇\n- Ask how the shoulder felt", **summary) -> Note:
    """A hand-made note: its text only, no renderer behind it (see ``square_note``)."""
    return Note(
        text=f"{START}\n{body}\n{END}",
        block_start=START,
        block_end=END,
        summary=summary,
        talking_points=("Ask how the shoulder felt", "Check pressure preference"),
    )


def customer_path(customer: dict) -> str:
    return f"/v2/customers/{customer['id']}"
