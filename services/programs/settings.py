from __future__ import annotations

from shared.settings import CommonSettings


class ProgramsSettings(CommonSettings):
    programs_port: int = 8084
    programs_group: str = "nqt-programs"
