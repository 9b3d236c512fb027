"""How Hookline writes JSON text: one policy, in one place.

Stored values (contexts, job inputs and results, definitions) and values rendered into text are
written compact (``,`` and ``:``) and with UTF-8 as it is (``ensure_ascii=False``). What is
stored is JSON only: ``NaN`` and ``Infinity`` are refused where a value enters (a node's result,
a definition), so :func:`encode` meets none. The encoders are made once: ``json.dumps`` with
options makes a new encoder on each call, which the hot path would pay for every value.

The models' JSON columns (:func:`encode_column`) keep the escaped ASCII that the rows already
stored were written with; the CLI's indented output is its own.
"""

from __future__ import annotations

import json
from typing import Any

_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_STRICT = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_ASCII = json.JSONEncoder(separators=(",", ":"))
_LENIENT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)


def encode(value: Any) -> str:
    """``value`` as stored JSON text."""
    return _COMPACT.encode(value)


def encode_strict(value: Any) -> str:
    """``value`` as JSON text, refusing what JSON has not (``NaN``, ``Infinity``: ``ValueError``;
    other objects: ``TypeError``). For values from plugins, checked where they enter."""
    return _STRICT.encode(value)


def encode_text(value: Any) -> str:
    """``value`` as it appears inside longer text (a template): objects JSON has not, as
    ``str`` gives them."""
    return _LENIENT.encode(value)


def encode_column(value: Any) -> str:
    """``value`` as the models' JSON columns store it (the standard library, compact, escaped
    ASCII). Said here rather than left to tortoise, which switches every JSONField to orjson
    when orjson happens to be installed (orjson refuses integers beyond 64 bits and lone
    surrogates, which these columns store)."""
    return _ASCII.encode(value)


decode = json.loads
