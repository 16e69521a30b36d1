from __future__ import annotations

from datetime import datetime, timedelta, timezone

import limits
from pydantic import AwareDatetime, Field, field_validator, model_validator
from standardwebhooks import Webhook

from shared.settings import CommonSettings


class IngestSettings(CommonSettings):
    ingest_port: int = 8081
    ingest_group: str = "nqt-ingest"  # consumer group reading `programs.outcomes`
    ingest_outcomes_batch: int = Field(500, ge=1, le=10_000)  # outcomes read (and committed) together
    # Development key map, API key -> unit code, e.g. '{"dev-key-so-khdt": "SO-KHDT"}'.
    # Only when NQT_ENV is not prod: with NQT_ENV=prod a non-empty map refuses to start, and
    # units use keys issued with `nqt keys issue UNIT` (only their hash is stored). Unknown keys get 401.
    ingest_dev_keys: dict[str, str] = Field(default_factory=dict)
    # Development signing secrets, unit -> "whsec_..." (Standard Webhooks), e.g. '{"SO-KHDT": "whsec_..."}':
    # what a unit signs its records on inbound.events (and requests with a development key) with.
    # Refused with NQT_ENV=prod, like the development keys: there, keys issued with --require-signature.
    ingest_dev_signing_secrets: dict[str, str] = Field(default_factory=dict)
    ingest_max_batch: int = Field(1000, ge=1)
    ingest_max_body_bytes: int = Field(5 * 1024 * 1024, ge=1024)
    # One event's accepted record, serialised: below what the producer may send (aiokafka's
    # max_request_size and the broker's message.max.bytes, both about 1 MiB), with room to spare.
    ingest_max_event_bytes: int = Field(512 * 1024, ge=1024, le=900 * 1024)
    # An event's `time` lies between the term's start (from the registry) minus this margin
    # and now plus the clock skew; until the registry is known, no earlier than the floor.
    ingest_time_margin_days: int = Field(366, ge=0, le=36_500)
    ingest_earliest_event_time: AwareDatetime = datetime(2000, 1, 1, tzinfo=timezone(timedelta(hours=7)))
    ingest_max_clock_skew_s: float = Field(300.0, ge=0, le=86_400)
    # Requests per unit, as a moving window kept in each process's memory (`limits` notation,
    # e.g. "600/minute"). With N replicas behind a load balancer a unit gets up to N times this.
    ingest_rate_limit: str = "600/minute"
    # Spreadsheet uploads (POST /v1/imports): the request's bytes, and the rows read before refusing (413).
    ingest_max_upload_bytes: int = Field(10 * 1024 * 1024, ge=64 * 1024)
    ingest_max_upload_rows: int = Field(20_000, ge=1)
    # How long a publish may wait for Kafka's acknowledgement before the caller gets 503.
    ingest_publish_timeout_s: float = Field(10.0, gt=0)

    @field_validator("ingest_rate_limit")
    @classmethod
    def _parsable_rate(cls, value: str) -> str:
        limits.parse(value)  # fail at start-up, not on the first request
        return value

    @field_validator("ingest_dev_signing_secrets")
    @classmethod
    def _usable_secrets(cls, value: dict[str, str]) -> dict[str, str]:
        for unit, secret in value.items():
            try:
                Webhook(secret)  # fail at start-up, not on the unit's first record
            except Exception as err:
                raise ValueError(f"the signing secret of {unit} is not a whsec_ (base64) secret") from err
        return value

    @model_validator(mode="after")
    def _no_dev_keys_in_prod(self):
        if self.env == "prod" and self.ingest_dev_keys:
            raise ValueError("NQT_INGEST_DEV_KEYS is for development only; in prod issue keys with `nqt keys issue`")
        if self.env == "prod" and self.ingest_dev_signing_secrets:
            raise ValueError("NQT_INGEST_DEV_SIGNING_SECRETS is for development only; in prod issue keys with "
                             "`nqt keys issue UNIT --require-signature`")
        return self
