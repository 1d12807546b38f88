"""Exponents are small rationals (multiples of 1/4 in every published case): round away the LP's noise."""

from __future__ import annotations


def clean(x: float) -> float:
    """``x`` rounded to 9 decimals, with -0.0 turned into 0.0 (so tables print and compare cleanly)."""
    return round(float(x), 9) + 0.0
