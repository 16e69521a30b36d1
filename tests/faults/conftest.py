"""The fault scenarios' summary: a table at the end of the run and, for the long
versions (`make faults`), the same rows in out/faults.json."""

from __future__ import annotations

import json
from pathlib import Path

from tests.faults import scenarios

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = ("scenario", "events", "faults", "redeliveries", "lost", "doubled", "recovery_s")


def table(rows: list[dict]) -> str:
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in COLUMNS}
    line = lambda values: "| " + " | ".join(str(v).rjust(widths[c]) if c != "scenario" else str(v).ljust(widths[c])
                                            for c, v in zip(COLUMNS, values)) + " |"
    rule = "|" + "|".join("-" * (widths[c] + 2) if c == "scenario" else "-" * (widths[c] + 1) + ":"
                          for c in COLUMNS) + "|"
    return "\n".join([line(COLUMNS), rule, *(line([r[c] for c in COLUMNS]) for r in rows)])


def pytest_terminal_summary(terminalreporter):
    rows = scenarios.RESULTS
    if not rows:
        return
    level = scenarios.intensity().name
    terminalreporter.write_sep("=", f"fault injection ({level})")
    terminalreporter.write_line(table(rows))
    if level == "long":
        out = ROOT / "out" / "faults.json"
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps([{c: r[c] for c in COLUMNS} for r in rows], indent=1) + "\n")
        (ROOT / "out" / "faults-detail.json").write_text(json.dumps(rows, indent=1) + "\n")
        terminalreporter.write_line(f"written to {out}")
