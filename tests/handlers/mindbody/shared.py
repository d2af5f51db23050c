"""What the Mindbody adapter's tests share besides fixtures: where the recorded events
are, the subscription key they are signed with, a hand-made note, the stand-in's
refusals."""

from __future__ import annotations

from pathlib import Path

from handlers.base import Note
from tests.sandboxes.mindbody import MindbodySandbox

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "mindbody"
SIGNATURE_KEY = "mb-subscription-key-1"
START, END = "[Rapport]", "[/Rapport]"


def note(body: str = "Alliance 82/100 ▂▅▇\n- Ask how the shoulder felt") -> Note:
    """A hand-made note: its text only, no renderer behind it."""
    return Note(text=f"{START}\n{body}\n{END}", block_start=START, block_end=END,
                talking_points=("Ask how the shoulder felt",))


def refused(sandbox: MindbodySandbox) -> list:
    """What the stand-in refused by the reference's rules (injected failures excluded)."""
    return [(r.method, r.path, error) for r, error in sandbox.rejected]
