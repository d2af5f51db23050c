"""One check-in on rapport-checkin, shared by the notes' tests (Square's, Acuity's, the
questionnaires'): some concerns, three talking points, seen on a known date."""

from datetime import date

VISIT = date(2026, 11, 25)
ANSWERS = {
    "listened": 4,
    "shared-aims": 4,
    "plan": 2,
    "pressure": 2,
    "held-back": 2,
    "boundaries": 5,
    "confidential": 5,
    "safe": 5,
}
