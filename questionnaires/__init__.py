"""Rapport's clinical content: alliance instruments as data, and what follows from answers.

An instrument is a YAML file (format: README.md in this folder). From a client's
answers Rapport computes a score (``score``), puts it in the context of the client's
history (``assess``: trend, change, flags, talking points) and renders the note written
onto the client's profile (``render_note``; ``note_parts`` and ``render_parts`` keep a
note's parts to render it again within a smaller limit later). This package imports
neither ``plugin`` nor ``handlers``.
"""

from .answer_form import answer_schema
from .assessment import Assessment, assess
from .errors import AnswerError, InstrumentError
from .flags import Flag, FlagSettings
from .history import PastResult
from .loading import load_instrument
from .model import NOT_APPLICABLE, Instrument, LocalizedInstrument
from .note import NOTE_BLOCK_END, NOTE_BLOCK_START, note_parts, render_note, render_parts
from .registry import SHIPPED_DIR, InstrumentRegistry, configured_dirs
from .scoring import Score, SubscaleScore, score

__all__ = [
    "NOTE_BLOCK_END",
    "NOTE_BLOCK_START",
    "NOT_APPLICABLE",
    "SHIPPED_DIR",
    "AnswerError",
    "Assessment",
    "Flag",
    "FlagSettings",
    "Instrument",
    "InstrumentError",
    "InstrumentRegistry",
    "LocalizedInstrument",
    "PastResult",
    "Score",
    "SubscaleScore",
    "answer_schema",
    "assess",
    "configured_dirs",
    "load_instrument",
    "note_parts",
    "render_note",
    "render_parts",
    "score",
]
