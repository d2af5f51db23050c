"""Rounding half up, as a person checking a score by hand would (round() gives 62.2 for
62.25, because it rounds half to even on the float's binary value)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal


def rounded(value: float, places: int = 1) -> float:
    return float(Decimal(repr(value)).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP))
