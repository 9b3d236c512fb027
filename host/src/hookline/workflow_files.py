"""Reading workflow definitions from YAML or JSON files (``workflows apply``, ``serve --workflows``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from hookline.errors import BadRequest

SUFFIXES = (".yaml", ".yml", ".json")


def read_workflow_files(path: str | Path) -> list[tuple[str, Any]]:
    """``(source, definition)`` for each definition in a file, or in every ``*.yaml``,
    ``*.yml`` and ``*.json`` file of a directory (sorted by name). A YAML file may hold several
    documents separated by ``---``; ``source`` is then ``file#N``."""
    root = Path(path)
    if root.is_dir():
        files = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
        if not files:
            raise BadRequest(f"{root}: no workflow files (*.yaml, *.yml, *.json) in this directory")
    elif root.is_file():
        files = [root]
    else:
        raise BadRequest(f"{root}: no such file or directory")
    found: list[tuple[str, Any]] = []
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
            if file.suffix.lower() == ".json":
                documents = [json.loads(text)]
            else:
                documents = [d for d in yaml.safe_load_all(text) if d is not None]
        except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
            raise BadRequest(f"{file}: cannot read it as {file.suffix[1:].upper()}: {exc}") from None
        for number, document in enumerate(documents, start=1):
            found.append((f"{file}#{number}" if len(documents) > 1 else str(file), document))
    return found
