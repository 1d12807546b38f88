"""Whole numbers written as text: ``16``, ``16.0``, ``1.6e1`` are all 16.

One reading for the CLI's integer options (``--width``, ``--target-size``, ...) and a spec's widths, which word
their errors each in their own way: the reading says what the text is, the caller says what is wrong with it.
REST fields and the Python API take a float that is a whole number (``4096.0``); the text forms follow them.

The text is read as an exact decimal, not a float: ``4096.00000000000001`` is no whole number, though as a float
it is. Its size is checked before anything rounds it: ``Decimal("1e99999999")``'s ``abs()`` and
``to_integral_value()`` raise ``decimal.Overflow`` (session 80, once in each of the three readers this replaced).
"""

from __future__ import annotations

import decimal
import math
import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class WholeReading:
    """What a text is as a number: ``value`` where it is a whole number within the limit, else ``fraction`` (a
    finite number with a fractional part) or ``too_large`` (its magnitude beyond the limit); none of the three
    where it is no finite number at all (the caller's own check names that)."""

    value: int | None = None
    fraction: bool = False
    too_large: bool = False
    negative: bool = False

    @property
    def number(self) -> bool:
        return self.value is not None or self.fraction or self.too_large


def _decimal(text: str) -> decimal.Decimal | None:
    """``text`` as an exact decimal; a literal whose exponent is past what Decimal holds (``1e-99999999999999999999``,
    which float() reads as 0) as a number beyond any limit or a nonzero number nearer 0 than any float (a review:
    such a literal slipped past both checks); None where it is no number."""
    try:
        value = float(text)  # float() places underscores as Python does (1_000); Decimal took "_10" and "1__0"
    except ValueError:
        return None
    try:
        return decimal.Decimal(text.strip())
    except decimal.InvalidOperation:
        pass
    if math.isinf(value):
        return decimal.Decimal("-1e999999" if value < 0 else "1e999999")
    mantissa = text.strip().lower().partition("e")[0]
    if value == 0 and any(unicodedata.digit(ch, 0) for ch in mantissa):
        return decimal.Decimal("-1e-999999" if mantissa.lstrip().startswith("-") else "1e-999999")
    return decimal.Decimal(repr(value))


def read_whole(text: str, limit: int) -> WholeReading:
    """``text`` (spaces around it ignored) read as a whole number of magnitude at most ``limit``.

    >>> read_whole("1.6e1", 2**63).value
    16
    >>> read_whole("16.5", 2**63).fraction
    True
    >>> read_whole("1e99999999", 2**63).too_large
    True
    >>> read_whole("sixteen", 2**63).number
    False
    """
    number = _decimal(text)
    if number is None or not number.is_finite():
        return WholeReading()
    negative = number.is_signed() and not number.is_zero()
    if number.copy_abs() > limit:  # first: abs() and to_integral_value() overflow on 1e99999999
        return WholeReading(too_large=True, negative=negative)
    if number != number.to_integral_value():
        return WholeReading(fraction=True, negative=negative)
    return WholeReading(value=int(number), negative=negative)


def reads_as_zero(text: str) -> bool:
    """Whether ``text`` is a number other than 0 that a float rounds to 0 (``1e-99999999``)."""
    try:
        value = float(text)
    except ValueError:
        return False
    number = _decimal(text)
    return value == 0 and number is not None and not number.is_zero()


def as_typed(text: str, limit: int = 40) -> str:
    """``text`` as a message echoes it: stripped, and a long one cut to its ends with its length said (a
    5000-digit ``--width`` was echoed whole)."""
    text = text.strip()
    if len(text) <= limit:
        return text
    return f"{text[:limit // 2]}...{text[-8:]} ({len(text)} characters)"


def shown(value: object, limit: int = 80) -> str:
    """``repr(value)`` for a message, a long one cut (:func:`as_typed`); an int past Python's 4,300 digits, whose
    repr raises, said by its size (it raised out of the message that was to name it: a review)."""
    try:
        return as_typed(repr(value), limit)
    except ValueError:
        return "an int past 4300 digits" if isinstance(value, int) else \
            f"a {type(value).__name__} holding a number past 4300 digits"


def as_said(text: str) -> str:
    """A number refused as no whole number, said as REST and Python say it (``4096.50`` as 4096.5) where the
    float is that very number, else as typed (``4e-324`` is not the float 5e-324 it rounds to)."""
    try:
        value = float(text)
        if decimal.Decimal(repr(value)) == decimal.Decimal(text.strip()):
            return repr(value)
    except (ValueError, decimal.InvalidOperation):
        pass
    return as_typed(text)
