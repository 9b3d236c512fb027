"""Bounded regular expressions for the ``regex`` and ``not_regex`` operators.

Python's ``re`` cannot be interrupted: a pattern such as ``(a|aa)+$`` against a long run of
``a`` backtracks for minutes, and a thread running it cannot be killed. The ``regex`` package
(mrab-regex, the engine proposed for the standard library) checks a ``timeout`` inside its
matching loop and raises ``TimeoutError``, so the work really stops. Three bounds apply:

* the pattern is at most :data:`MAX_PATTERN_LENGTH` characters;
* the text searched is at most :data:`MAX_SUBJECT_LENGTH` characters;
* one search may take at most :data:`TIMEOUT_SECONDS` seconds (checked by the engine
  periodically, so it can overrun slightly).
"""

from __future__ import annotations

from functools import lru_cache

import regex

from hookline_condition.values import Incomparable, described

MAX_PATTERN_LENGTH = 500
MAX_SUBJECT_LENGTH = 100_000
TIMEOUT_SECONDS = 0.1


def pattern_problem(pattern: object) -> str | None:
    """Why ``pattern`` cannot be used, or ``None``. Used when the workflow is saved."""
    if not isinstance(pattern, str):
        return f"a regular expression must be a string, not {described(pattern)}"
    if len(pattern) > MAX_PATTERN_LENGTH:
        return f"the regular expression is {len(pattern)} characters long; the limit is {MAX_PATTERN_LENGTH}"
    try:
        _compile(pattern, False)
    except regex.error as exc:
        return f"invalid regular expression {described(pattern)}: {exc}"
    return None


def search(pattern: str, subject: str, *, case_sensitive: bool) -> bool:
    """True when ``pattern`` matches anywhere in ``subject`` (anchor with ``^``/``$``)."""
    problem = pattern_problem(pattern)
    if problem is not None:
        raise Incomparable(problem)
    if len(subject) > MAX_SUBJECT_LENGTH:
        raise Incomparable(
            f"the text to search is {len(subject)} characters long; the limit for regex is {MAX_SUBJECT_LENGTH}"
        )
    try:
        return _compile(pattern, not case_sensitive).search(subject, timeout=TIMEOUT_SECONDS) is not None
    except TimeoutError:
        raise Incomparable(
            f"the regular expression {described(pattern)} took longer than {TIMEOUT_SECONDS} s on a "
            f"{len(subject)}-character text and was stopped; simplify it (avoid nested repetition such as (a+)+)"
        ) from None


@lru_cache(maxsize=256)
def _compile(pattern: str, ignore_case: bool) -> regex.Pattern[str]:
    # VERSION0 is re-compatible syntax; FULLCASE makes IGNORECASE fold like str.casefold.
    flags = regex.VERSION0 | (regex.IGNORECASE | regex.FULLCASE if ignore_case else 0)
    return regex.compile(pattern, flags)
