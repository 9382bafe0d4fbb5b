"""Telling whether text is a whole number as a person types one in ASCII.

`str.isdigit` is true for "²", "١٢" and "𝟗", and `int()` then accepts some of them (Arabic-Indic
digits) and refuses others (superscripts) with a ValueError: a check that passes and a
conversion that fails is a 500 waiting for hostile input (a header, a form field, a cron
field). Every "is this a number" that precedes an `int()` or `float()` asks this instead.
"""

from __future__ import annotations


def ascii_digits(text: str) -> bool:
    """True when `text` is one or more of 0-9 and nothing else."""
    return text.isascii() and text.isdigit()
