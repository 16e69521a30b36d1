from __future__ import annotations

from pydantic import Field

from shared.settings import CommonSettings


class IngestSettings(CommonSettings):
    ingest_port: int = 8081
    ingest_group: str = "nqt-ingest"  # consumer group reading `programs.outcomes`
    # Development key map, API key -> unit code, e.g. '{"dev-key-so-khdt": "SO-KHDT"}'.
    # Unknown keys are refused (401); per-unit issued keys replace this map.
    ingest_dev_keys: dict[str, str] = Field(default_factory=dict)
    ingest_max_batch: int = Field(1000, ge=1)
    ingest_max_body_bytes: int = Field(5 * 1024 * 1024, ge=1024)
