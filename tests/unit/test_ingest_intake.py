"""Kafka intake's pure parts: a record's signature judged by the broker's clock, the secrets
a unit may sign with, the development secrets (never in prod), and the AsyncAPI document
of `inbound.events` that tells a departmental system all of it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest
from pydantic import ValidationError
from standardwebhooks import Webhook

from services.ingest import domain
from services.ingest.app import build
from services.ingest.settings import IngestSettings

SECRET = domain.new_signing_secret()
VALUE = b'{"specversion":"1.0","id":"K-1","source":"SO-KHDT"}'


def headers(at: datetime, *, secret: str = SECRET, msg_id: str = "msg-1") -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": Webhook(secret).sign(msg_id, at, VALUE.decode())}


def test_a_records_signature_is_judged_by_when_the_broker_appended_it():
    appended = datetime.now(timezone.utc) - timedelta(hours=3)  # read three hours later: a lagging consumer
    signed = headers(appended - timedelta(minutes=2))
    assert domain.signed_id(signed, VALUE, [SECRET], at=appended) == "msg-1"
    with pytest.raises(domain.Unauthenticated, match="too old"):
        domain.signed_id(signed, VALUE, [SECRET], at=appended + timedelta(minutes=4))
    with pytest.raises(domain.Unauthenticated, match="too new"):
        domain.signed_id(headers(appended + timedelta(minutes=6)), VALUE, [SECRET], at=appended)


def test_any_of_the_units_secrets_may_have_signed_it_and_no_other():
    other = domain.new_signing_secret()
    now = datetime.now(timezone.utc)
    assert domain.signed_id(headers(now), VALUE, [other, SECRET], at=now) == "msg-1"
    with pytest.raises(domain.Unauthenticated, match="no matching signature"):
        domain.signed_id(headers(now), VALUE, [other], at=now)
    with pytest.raises(domain.Unauthenticated, match="no matching signature"):
        domain.signed_id(headers(now), VALUE + b" ", [SECRET], at=now)


@pytest.mark.parametrize("change", [{"webhook-signature": "v1,!!"}, {"webhook-timestamp": "1e400"},
                                    {"webhook-timestamp": "nan"}, {"webhook-id": ""}])
def test_malformed_signature_headers_are_unauthenticated_never_an_error(change):
    now = datetime.now(timezone.utc)
    with pytest.raises(domain.Unauthenticated):
        domain.signed_id(headers(now) | change, VALUE, [SECRET], at=now)


def test_only_keys_in_force_lend_their_secrets():
    now = datetime(2026, 6, 1, tzinfo=timezone.utc)
    keys = [{"signing_secret": "whsec_a", "revoked_at": None, "expires_at": None},
            {"signing_secret": "whsec_b", "revoked_at": now, "expires_at": None},
            {"signing_secret": "whsec_c", "revoked_at": None, "expires_at": now},
            {"signing_secret": None, "revoked_at": None, "expires_at": None},
            {"signing_secret": "whsec_d", "revoked_at": None, "expires_at": now + timedelta(days=1)}]
    assert domain.signing_secrets(keys, now) == ["whsec_a", "whsec_d"]


def test_development_signing_secrets_are_refused_in_prod_and_must_be_secrets():
    prod = dict(env="prod", kafka_bootstrap="kafka:9092", mongo_url="mongodb://mongo:27017")
    with pytest.raises(ValidationError, match="development only"):
        IngestSettings(**prod, ingest_dev_signing_secrets={"SO-KHDT": SECRET})
    with pytest.raises(ValidationError, match="SO-KHDT"):
        IngestSettings(ingest_dev_signing_secrets={"SO-KHDT": "whsec_"})
    assert IngestSettings(ingest_dev_signing_secrets={"SO-KHDT": SECRET}).ingest_dev_signing_secrets == {
        "SO-KHDT": SECRET}


async def test_asyncapi_describes_the_topic_its_signature_headers_and_the_cloudevent():
    app = build(IngestSettings(topic_prefix="hn."))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingest") as client:
        response = await client.get("/asyncapi.json")
        openapi = (await client.get("/openapi.json")).json()
    spec = response.json()
    assert response.status_code == 200 and spec["asyncapi"].startswith("3.")
    [channel] = spec["channels"].values()
    assert channel["address"] == "hn.inbound.events"
    [operation] = spec["operations"].values()
    assert operation["action"] == "receive"
    [message] = spec["components"]["messages"].values()
    assert message["headers"]["required"] == ["webhook-id", "webhook-timestamp", "webhook-signature"]
    assert message["payload"] == {"$ref": "#/components/schemas/CloudEvent"}
    schemas = spec["components"]["schemas"]
    assert schemas["CloudEvent"] == openapi["components"]["schemas"]["CloudEvent"]  # the same as over HTTP
    assert "HMAC-SHA256" in message["description"] and "LogAppendTime" in message["description"]
    refs = {v for schema in schemas.values() for v in _refs(schema)}
    assert {ref.rsplit("/", 1)[1] for ref in refs} <= set(schemas)  # every reference resolves


def _refs(value):
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "$ref":
                yield item
            else:
                yield from _refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _refs(item)
