"""The Jinja environment the console's pages (and plugins' pages) render with.

Autoescaping is on for every template: a value from a webhook caller (a key, a header, a body)
is always text on the page, never markup.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from importlib import resources
from typing import Any

import jinja2
from markupsafe import Markup, escape

STATUS_CLASSES = {
    "succeeded": "ok",
    "failed": "bad",
    "error": "bad",
    "timed_out": "bad",
    "cancelled": "muted",
    "queued": "wait",
    "running": "wait",
}


def make_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("hookline_console", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pretty_json"] = pretty_json
    env.filters["when"] = when
    env.filters["status_class"] = lambda status: STATUS_CLASSES.get(str(status), "muted")
    env.filters["ms"] = duration
    return env


def plugin_loader(spec: str) -> jinja2.BaseLoader:
    """A loader for ``"package:folder"``, a folder of templates inside an importable package."""
    package, _, folder = spec.partition(":")
    return jinja2.FileSystemLoader(str(resources.files(package).joinpath(folder)))


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


def when(value: str | None) -> Markup:
    """An ISO time as a ``<time>`` element: UTC, to the second, the full value as its title."""
    if not value:
        return Markup("&ndash;")
    try:
        moment = datetime.fromisoformat(value).astimezone(timezone.utc)
    except ValueError:
        return escape(value)
    return Markup('<time datetime="{0}" title="{0}">{1}</time>').format(value, moment.strftime("%Y-%m-%d %H:%M:%S"))


def duration(value: float | None) -> str:
    if value is None:
        return "–"
    if value < 1:
        return f"{value * 1000:.0f} µs"
    if value < 1000:
        return f"{value:.1f} ms"
    return f"{value / 1000:.2f} s"
