"""The records the services send each other (not the contract's inbound events): the
changes and outcomes programs publishes, the cycles and reports the reports service
announces. Each change says what it is about by its `kind`; every consumer looks a kind
up in a table of handlers and refuses (dead-letters, with the reason) a kind it has no
handler for, so a new kind cannot slip past a service unnoticed."""

from __future__ import annotations

# --- change kinds (`programs.changes`, field `kind`) ---
UNIT = "unit"                      # registry: a unit
PROGRAMME = "programme"            # registry: a programme
INDICATOR = "indicator"            # registry: an indicator
SETTINGS = "settings"              # registry: the header (term, issuer, reporting)
PLAN = "plan"                      # a plan submitted (or rejected)
TASK = "task"                      # a task's state (with the status report that changed it)
PROGRAMME_ISSUED = "programme_issued"
INDICATOR_VALUE = "indicator_value"
UNIT_REPORT = "unit_report"
SUPERVISION = "supervision"

REGISTRY_KINDS = (UNIT, PROGRAMME, INDICATOR, SETTINGS)
CHANGE_KINDS = (*REGISTRY_KINDS, PLAN, TASK, PROGRAMME_ISSUED, INDICATOR_VALUE, UNIT_REPORT, SUPERVISION)

# --- outcomes (`programs.outcomes`, field `outcome`) ---
APPLIED, REJECTED, DUPLICATE = "applied", "rejected", "duplicate"
OUTCOMES = (APPLIED, REJECTED, DUPLICATE)
