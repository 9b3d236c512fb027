"""How a condition or switch job's result looks in the console: its comparisons as a table, so
that *why* a branch was taken (or the execution stopped) is visible at a glance.

Plain string building, no template engine: the plugin must not depend on one. Every value comes
from the job, which holds whatever a webhook caller sent, so every value is escaped.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any, Iterable, Mapping

#: The node types whose results hold ``checks`` (see :class:`hookline_condition.rules.Evaluation`).
RENDERED_TYPES = ("condition", "switch")
#: A value longer than this is cut in the table (the whole result is still on the page as JSON).
MAX_VALUE_CHARS = 300
#: How the usual operators read, beside their names.
SYMBOLS = {"eq": "=", "ne": "≠", "gt": ">", "gte": "≥", "lt": "<", "lte": "≤"}


def render_checks(job: Mapping[str, Any], unary: Iterable[str] = ()) -> str | None:
    """The HTML of a condition or switch job's result, or ``None`` when it has no checks to show
    (another type, a job that failed before any result)."""
    result = job.get("result")
    if job.get("type") not in RENDERED_TYPES or not isinstance(result, Mapping):
        return None
    checks = result.get("checks")
    if not isinstance(checks, list):
        return None
    unary = set(unary)
    switch = job.get("type") == "switch"
    parts = ['<div class="condition-result">', _outcome(job, result, switch)]
    if checks:
        parts.append(_table(job, checks, switch, unary))
        parts.append(
            '<p class="muted">Only the comparisons made are listed: a group stops at the first rule that decides it.</p>'
        )
    else:
        parts.append('<p class="muted">No comparison was made.</p>')
    parts.append("</div>")
    return "\n".join(parts)


def _outcome(job: Mapping[str, Any], result: Mapping[str, Any], switch: bool) -> str:
    branch = job.get("branch")
    if switch:
        label = result.get("label")
        case = result.get("case")
        if case is None:
            said = "no case matched"
        else:
            said = f"case {_text(case)} matched" + (f" ({_text(label)})" if label else "")
        taken = f' → branch <strong>{_text(branch)}</strong>' if branch else ""
        return f'<p class="outcome">Result: {said}{taken}</p>'
    outcome = _verdict(result.get("result"), tag="strong")
    if result.get("stopped"):
        reason = result.get("reason") or "the condition was false"
        return f'<p class="outcome">Result: {outcome} → stopped: {_text(reason)}</p>'
    taken = f" → branch <strong>{_text(branch)}</strong>" if branch else " → went on"
    return f'<p class="outcome">Result: {outcome}{taken}</p>'


def _table(job: Mapping[str, Any], checks: list[Any], switch: bool, unary: set[str]) -> str:
    head = ['<th scope="col">Case</th>'] if switch else []
    head += ['<th scope="col">Left</th>', '<th scope="col">Operator</th>', '<th scope="col">Right</th>', '<th scope="col">Result</th>']
    rows = []
    for check in checks:
        if not isinstance(check, Mapping):
            continue
        cells = [f"<td>{_text(check.get('case', ''))}</td>"] if switch else []
        op = check.get("op")
        right = "<td>&ndash;</td>" if op in unary else f"<td>{_value(check.get('right'))}</td>"
        cells += [f"<td>{_value(check.get('left'))}</td>", f"<td>{_operator(check)}</td>", right]
        cells.append(_verdict(check.get("result"), tag="td"))
        rows.append("<tr>" + "".join(cells) + "</tr>")
    caption = f"Comparisons made by node <code>{_text(job.get('node', ''))}</code>, in order"
    return (
        '<table class="checks">'
        f"<caption>{caption}</caption>"
        f"<thead><tr>{''.join(head)}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody>"
        "</table>"
    )


def _operator(check: Mapping[str, Any]) -> str:
    op = check.get("op")
    shown = f"<code>{_text(op)}</code>"
    if op in SYMBOLS:
        shown += f" ({escape(SYMBOLS[op])})"
    notes = []
    if check.get("case_sensitive") is False:
        notes.append("case-insensitive")
    if check.get("loose"):
        notes.append("loose")
    if notes:
        shown += f' <span class="muted">{", ".join(notes)}</span>'
    return shown


def _verdict(value: Any, *, tag: str) -> str:
    if value is True:
        return f'<{tag} class="true">true</{tag}>'
    if value is False:
        return f'<{tag} class="false">false</{tag}>'
    return f"<{tag}>{_text(value)}</{tag}>"


def _value(value: Any) -> str:
    """A compared value as JSON (so that ``"150"`` and ``150`` look different), cut if long."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) > MAX_VALUE_CHARS:
        text = text[:MAX_VALUE_CHARS] + "…"
    return f"<code>{escape(text)}</code>"


def _text(value: Any) -> str:
    return escape(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str))
