"""shared/ is what every service builds on, so it depends on none of them: a helper in
shared/ that imports a service drags that service (and its settings) into all the others.
The operator's command line, which does use ingest's key store, lives in nqt/."""

from __future__ import annotations

import ast
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()
    for node in ast.walk(tree):  # also imports inside functions
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_shared_imports_no_service():
    modules = sorted(SHARED.glob("*.py"))
    assert len(modules) > 5
    offenders = {path.name: sorted(m for m in imported_modules(path) if m.split(".")[0] in ("services", "nqt"))
                 for path in modules}
    assert {name: found for name, found in offenders.items() if found} == {}
