from __future__ import annotations

from pydantic import Field

from shared.settings import CommonSettings


class ProgramsSettings(CommonSettings):
    programs_port: int = 8084
    programs_group: str = "nqt-programs"
    # A task update that arrives before its plan waits this long, then is rejected as unknown_task.
    programs_hold_seconds: float = Field(3 * 24 * 3600, gt=0)
    # How often held updates are looked at (applied if their task appeared, rejected if expired).
    programs_sweep_seconds: float = Field(30.0, gt=0)
    # Accepted records read and decided together (offsets committed after their writes).
    programs_batch: int = Field(2000, ge=1, le=10_000)
