"""Storage is a room with one door: outside ``hookline/storage/``, no module of the host imports
the ORM (``tortoise``) or its models (``hookline.storage.models``). Services ask storage's
modules for verbs and get plain values back; SQL, dialects and transactions stay inside."""

from __future__ import annotations

import ast
from pathlib import Path


HOST = Path(__file__).resolve().parent.parent / "host" / "src" / "hookline"

#: What the rest of the host must not import.
ORM = ("tortoise", "hookline.storage.models")

#: Modules outside storage that still may, each with why. Empty: none does. An entry is for a
#: module whose queries are about to move into storage (the test fails on an entry that no
#: longer applies).
ALLOWED: dict[str, str] = {}


def orm_imports(path: Path) -> list[str]:
    """The ORM modules ``path`` imports, anywhere in it (under ``TYPE_CHECKING`` or in a
    function too)."""
    package = ".".join(("hookline", *path.relative_to(HOST).parent.parts))
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, one level up per dot after the first
                parts = package.split(".")
                base = ".".join([*parts[: len(parts) - node.level + 1], *([base] if base else [])])
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        found += [
            f"line {node.lineno}: {name}" for name in names if any(name == o or name.startswith(o + ".") for o in ORM)
        ]
    return found


def outside_storage() -> list[Path]:
    return sorted(p for p in HOST.rglob("*.py") if p.relative_to(HOST).parts[0] != "storage")


def test_only_storage_imports_the_orm() -> None:
    offenders = {
        str(path.relative_to(HOST)): imports
        for path in outside_storage()
        if str(path.relative_to(HOST)) not in ALLOWED and (imports := orm_imports(path))
    }
    assert offenders == {}, (
        "these modules use the ORM above storage; give storage a verb for what they do "
        f"(hookline/storage/*.py) and call it: {offenders}"
    )


def test_every_exception_is_still_needed() -> None:
    stale = [module for module in sorted(ALLOWED) if not orm_imports(HOST / module)]
    assert stale == [], f"{stale} no longer import the ORM: remove them from ALLOWED"


def test_the_check_sees_an_import() -> None:
    """The check itself: it finds each way of writing an import of the ORM."""
    assert orm_imports(HOST / "storage" / "models.py")
    assert orm_imports(HOST / "storage" / "retention.py")
    assert not orm_imports(HOST / "status.py")
