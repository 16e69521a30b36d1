"""Settings shared by every service; each service extends them with its own.

Every variable has the prefix NQT_ (e.g. NQT_KAFKA_BOOTSTRAP, NQT_MONGO_URL)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AwareDatetime, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.clock import Clock
from shared.topics import Topics


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NQT_", extra="ignore", frozen=True, env_ignore_empty=True)

    env: Literal["dev", "test", "prod"] = "dev"
    kafka_bootstrap: str = "127.0.0.1:9092"
    # Kafka authentication: SASL/SCRAM (SCRAM-SHA-512 unless told otherwise), over TLS with SASL_SSL.
    kafka_security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256"] = "SCRAM-SHA-512"
    kafka_username: str | None = None
    kafka_password: SecretStr | None = None
    kafka_ssl_cafile: str | None = None  # CA bundle for SASL_SSL; unset = the system's CAs
    # Create missing topics at start-up; false where an operator creates them and ACLs deny Create.
    kafka_create_topics: bool = True
    mongo_url: str = "mongodb://127.0.0.1:27017"
    db_prefix: str = Field("nqt", pattern=r"^[A-Za-z0-9_]+$")
    topic_prefix: str = Field("", pattern=r"^[A-Za-z0-9_.-]*$")
    topic_partitions: int = Field(12, ge=1)
    topic_replication: int = Field(1, ge=1)
    http_host: str = "127.0.0.1"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    timezone: str = "Asia/Ho_Chi_Minh"
    # Pin "now" (e.g. 2021-03-15T09:00:00+07:00) to replay a past term; unset = the real time.
    # Reports (cycles, as-of) and notify (deadline scans) read it; arrival times stay on the wall clock.
    clock_fixed: AwareDatetime | None = None
    # Record where each process's peak memory comes from, phase by phase (`shared.heap`); unset = off.
    heap_profile_dir: Path | None = None
    heap_trace_frames: int = Field(0, ge=0, le=50)  # > 0: tracemalloc too (slow), with this many frames

    def clock(self) -> Clock:
        return Clock(self.timezone, self.clock_fixed)

    @property
    def topics(self) -> Topics:
        return Topics(self.topic_prefix)

    def database(self, service: str) -> str:
        return f"{self.db_prefix}_{service}"

    @model_validator(mode="after")
    def _no_default_infra_in_prod(self):
        if self.env == "prod" and ("127.0.0.1" in self.kafka_bootstrap or "127.0.0.1" in self.mongo_url):
            raise ValueError("NQT_ENV=prod needs NQT_KAFKA_BOOTSTRAP and NQT_MONGO_URL set explicitly")
        return self

    @model_validator(mode="after")
    def _sasl_needs_credentials(self):
        if self.kafka_security_protocol.startswith("SASL_") and not (
                self.kafka_username and self.kafka_password and self.kafka_password.get_secret_value()):
            raise ValueError(f"NQT_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                             "NQT_KAFKA_USERNAME and NQT_KAFKA_PASSWORD")
        return self
