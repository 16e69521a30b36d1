"""The pure parts of ingest's doors: issued keys, signatures, the rate, a publish that
Kafka does not acknowledge in time, and the settings that refuse unsafe values."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta, timezone

import orjson
import pytest
from pydantic import ValidationError
from standardwebhooks import Webhook

from shared import ratelimit

from services.ingest import access, domain, problems, service
from services.ingest.problems import ProblemError
from services.ingest.settings import IngestSettings

NOW = datetime(2026, 6, 1, 8, 0, tzinfo=timezone.utc)
BOUNDS = domain.Bounds.of(IngestSettings(ingest_max_batch=10))
SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
EVENT = {"specversion": "1.0", "id": "SO-KHDT-1", "source": "SO-KHDT", "type": "task.updated",
         "time": "2021-03-20T08:30:00+07:00",
         "data": {"task_id": "T-1", "programme": "02", "status": "in_progress", "progress": 40, "as_of": "2021-03-20",
                  "reported_by": {"name": "Trần Thị Bình", "position": "Chuyên viên"}}}


def refusal(fn, *args, **kwargs) -> ProblemError:
    """The problem document a refusal of `fn` is answered with."""
    with pytest.raises(domain.Refusal) as exc:
        fn(*args, **kwargs)
    return problems.from_refusal(exc.value)


# --- keys ---------------------------------------------------------------------------

def test_a_key_names_its_key_id_and_only_its_hash_identifies_it():
    key = domain.make_key("3f9a0c1d2e3f4a5b", "s3cr_et-with_underscores")
    assert key == "nqt_3f9a0c1d2e3f4a5b_s3cr_et-with_underscores"
    assert domain.key_id_of(key) == "3f9a0c1d2e3f4a5b"
    assert domain.hash_key(key) == domain.hash_key(key) != domain.hash_key(key + "x")
    assert len(domain.hash_key(key)) == 64


@pytest.mark.parametrize("token", ["dev-key", "nqt_", "nqt_abc", "nqt__secret", "xyz_abc_secret", "nqt_a-b_secret",
                                   "nqt_" + "a" * 65 + "_secret"])
def test_what_is_not_an_issued_key_has_no_key_id(token):
    assert domain.key_id_of(token) is None


def test_a_key_is_refused_when_unknown_forged_revoked_or_expired():
    key = domain.make_key("k1", "secret")
    doc = {"_id": "k1", "unit": "SO-KHDT", "hash": domain.hash_key(key), "revoked_at": None, "expires_at": None}
    assert domain.key_refusal(doc, key, NOW) is None
    assert domain.key_refusal(None, key, NOW) == "unknown API key"
    assert domain.key_refusal(doc, domain.make_key("k1", "guess"), NOW) == "unknown API key"
    assert "revoked" in domain.key_refusal(doc | {"revoked_at": NOW}, key, NOW)
    assert "expired" in domain.key_refusal(doc | {"expires_at": NOW}, key, NOW)
    assert domain.key_refusal(doc | {"expires_at": NOW + timedelta(seconds=1)}, key, NOW) is None


def test_a_key_expires_at_the_end_of_its_last_day_in_hanoi():
    assert domain.end_of_day(date(2026, 12, 31), "Asia/Ho_Chi_Minh") == datetime(2026, 12, 31, 17, tzinfo=timezone.utc)


# --- signatures ---------------------------------------------------------------------

def signed_headers(body: bytes, *, secret: str = SECRET, msg_id: str = "msg-1", at: datetime | None = None) -> dict:
    at = at or datetime.now(timezone.utc)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": Webhook(secret).sign(msg_id, at, body.decode())}


SIGNING = access.Caller(unit="SO-KHDT", key_id="k1", signing_secret=SECRET, require_signature=True)
OPTIONAL = access.Caller(unit="SO-KHDT", key_id="k2", signing_secret=SECRET)
DEV = access.Caller(unit="SO-KHDT")


def test_a_good_signature_gives_the_request_id():
    body = orjson.dumps(EVENT)
    assert access.verify_signature(caller=SIGNING, body=body, headers=signed_headers(body)) == "msg-1"


def test_unsigned_requests_pass_only_when_the_key_does_not_require_signing():
    assert access.verify_signature(caller=OPTIONAL, body=b"{}", headers={}) is None
    assert access.verify_signature(caller=DEV, body=b"{}", headers={}) is None
    assert "requires signed" in refusal(access.verify_signature, caller=SIGNING, body=b"{}", headers={}).detail


@pytest.mark.parametrize("change", [
    {"webhook-signature": "v1,AAAA"}, {"webhook-signature": "v1"}, {"webhook-signature": "v1,not base64!"},
    {"webhook-signature": "v2,abc"}, {"webhook-timestamp": "soon"}, {"webhook-timestamp": "nan"},
    {"webhook-timestamp": "1e400"}, {"webhook-id": "msg-2"},
])
def test_any_bad_signature_header_is_401_never_an_error(change):
    body = orjson.dumps(EVENT)
    err = refusal(access.verify_signature, caller=OPTIONAL, body=body, headers=signed_headers(body) | change)
    assert err.status == 401


def test_a_partly_signed_a_not_utf8_or_a_tampered_body_is_401():
    body = orjson.dumps(EVENT)
    headers = signed_headers(body)
    partial = {k: v for k, v in headers.items() if k != "webhook-signature"}
    assert refusal(access.verify_signature, caller=OPTIONAL, body=body, headers=partial).status == 401
    assert refusal(access.verify_signature, caller=OPTIONAL, body=b"\xff" + body, headers=headers).status == 401
    assert refusal(access.verify_signature, caller=OPTIONAL, body=body + b" ", headers=headers).status == 401
    assert "no signing secret" in refusal(access.verify_signature, caller=DEV, body=body, headers=headers).detail


def test_a_timestamp_more_than_five_minutes_off_is_401():
    body = orjson.dumps(EVENT)
    for minutes in (-6, 6):
        at = datetime.now(timezone.utc) + timedelta(minutes=minutes)
        assert refusal(access.verify_signature, caller=OPTIONAL, body=body,
                       headers=signed_headers(body, at=at)).status == 401
    at = datetime.now(timezone.utc) - timedelta(minutes=4)
    assert access.verify_signature(caller=OPTIONAL, body=body, headers=signed_headers(body, at=at)) == "msg-1"


# --- rate ---------------------------------------------------------------------------

def test_a_unit_over_its_rate_gets_429_with_retry_after_and_others_do_not():
    guard = access.Guard("2/minute")
    guard.admit("SO-KHDT")
    guard.admit("SO-KHDT")
    err = refusal(guard.admit, "SO-KHDT")
    assert err.status == 429 and 1 <= int(err.headers["Retry-After"]) <= 60
    guard.admit("SO-TC")


def test_the_window_moves_a_slot_frees_when_its_oldest_hit_leaves_the_window():
    window = ratelimit.MovingWindow(limit=3, seconds=60.0)
    assert [window.hit("SO-KHDT", now) for now in (0.0, 10.0, 20.0)] == [None, None, None]
    assert window.hit("SO-KHDT", 30.0) == 30.0       # full: the hit at 0 frees a slot at 60
    assert window.hit("SO-KHDT", 59.9) == pytest.approx(0.1)
    assert window.hit("SO-TC", 59.9) is None          # each unit has its own window
    assert window.hit("SO-KHDT", 60.0) is None        # the hit at 0 has left
    assert window.hit("SO-KHDT", 60.5) == pytest.approx(9.5)
    assert window.hit("SO-KHDT", 200.0) is None       # a quiet unit starts afresh
    assert window.hit("SO-KHDT", 200.0) is None


def test_refused_requests_do_not_use_up_the_window():
    window = ratelimit.MovingWindow(limit=1, seconds=10.0)
    assert window.hit("SO-KHDT", 0.0) is None
    for now in (1.0, 5.0, 9.0):
        assert window.hit("SO-KHDT", now) == pytest.approx(10.0 - now)
    assert window.hit("SO-KHDT", 10.0) is None


def test_retry_after_is_whole_seconds_and_at_least_one():
    assert ratelimit.retry_after(0.2) == 1
    assert ratelimit.retry_after(59.1) == 60
    assert ratelimit.retry_after(-10.0) == 1


# --- a publish Kafka does not acknowledge in time --------------------------------------

class SilentBroker:
    """A broker that takes every record and never acknowledges any."""

    async def publish(self, *args, **kwargs):
        return asyncio.get_running_loop().create_future()


class FakeStore:
    def __init__(self):
        self.accepted, self.webhook_ids = [], set()

    async def record_accepted(self, events, *, accepted_at):
        self.accepted += events

    async def webhook_id_use(self, *, unit, webhook_id):
        return {"record": None} if (unit, webhook_id) in self.webhook_ids else None

    async def remember_webhook_id(self, *, unit, webhook_id, seen_at, record=None):
        self.webhook_ids.add((unit, webhook_id))

    async def forget_webhook_ids(self, *, seen_before):
        return 0

    async def term_start(self):
        return None


async def test_no_acknowledgement_in_time_is_503_with_retry_after_and_nothing_accepted():
    store = FakeStore()
    with pytest.raises(domain.Unavailable) as exc:
        await service.submit(broker=SilentBroker(), topic="events.accepted", store=store,
                             guard=access.Guard("9/second"), term=service.Term(), caller=DEV,
                             body=orjson.dumps(EVENT), headers={}, bounds=BOUNDS, timeout_s=0.05)
    problem = problems.from_refusal(exc.value)
    assert problem.status == 503 and problem.headers["Retry-After"] == "1"
    assert "within 0.05 s" in problem.detail
    assert store.accepted == []


async def test_a_signed_request_that_failed_to_publish_can_be_sent_again():
    store, body = FakeStore(), orjson.dumps(EVENT)
    headers = signed_headers(body)
    submit = dict(topic="events.accepted", store=store, guard=access.Guard("9/second"), term=service.Term(),
                  caller=OPTIONAL, body=body, headers=headers, bounds=BOUNDS, timeout_s=0.05)
    with pytest.raises(domain.Unavailable):
        await service.submit(broker=SilentBroker(), **submit)
    assert store.webhook_ids == set()  # not recorded: the retry below is not a replay
    with pytest.raises(domain.Unavailable):
        await service.submit(broker=SilentBroker(), **submit)


class CutShortBroker:
    """A broker whose publish never returns: the request is cut short (a client gone, a
    process killed) before Kafka acknowledged anything."""

    async def publish(self, *args, **kwargs):
        raise asyncio.CancelledError


class AckingBroker:
    async def publish(self, *args, **kwargs):
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


async def test_a_signed_request_cut_short_before_the_ack_is_no_replay_when_sent_again():
    store, body = FakeStore(), orjson.dumps(EVENT)
    submit = dict(topic="events.accepted", store=store, guard=access.Guard("9/second"), term=service.Term(),
                  caller=OPTIONAL, body=body, headers=signed_headers(body), bounds=BOUNDS, timeout_s=1)
    with pytest.raises(asyncio.CancelledError):
        await service.submit(broker=CutShortBroker(), **submit)
    assert await service.submit(broker=AckingBroker(), **submit) == ["SO-KHDT-1"]
    with pytest.raises(domain.Unauthenticated, match="replayed"):  # acknowledged once: now it is a replay
        await service.submit(broker=AckingBroker(), **submit)


# --- settings -------------------------------------------------------------------------

def test_development_keys_are_refused_in_prod():
    prod = dict(env="prod", kafka_bootstrap="kafka:9092", mongo_url="mongodb://mongo:27017")
    with pytest.raises(ValidationError, match="development only"):
        IngestSettings(**prod, ingest_dev_keys={"k": "SO-KHDT"})
    assert IngestSettings(**prod).ingest_dev_keys == {}
    assert IngestSettings(env="dev", ingest_dev_keys={"k": "SO-KHDT"}).ingest_dev_keys == {"k": "SO-KHDT"}


def test_a_rate_limit_that_does_not_parse_is_refused_at_start():
    with pytest.raises(ValidationError):
        IngestSettings(ingest_rate_limit="lots")
    assert IngestSettings().ingest_rate_limit == "600/minute"


# --- the description ----------------------------------------------------------------

async def test_openapi_describes_the_key_the_signature_the_body_and_every_problem():
    import httpx

    from services.ingest.app import build

    app = build(IngestSettings())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingest") as client:
        docs, spec = await client.get("/docs"), (await client.get("/openapi.json")).json()
    post, get = spec["paths"]["/v1/events"]["post"], spec["paths"]["/v1/events/{id}"]["get"]
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    scheme = spec["components"]["securitySchemes"]["unitKey"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert post["security"] == get["security"] == [{"unitKey": []}]
    assert [p["name"] for p in post["parameters"]] == ["webhook-id", "webhook-timestamp", "webhook-signature"]
    assert not any(p["required"] for p in post["parameters"])
    single, batch = post["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    assert (batch["minItems"], batch["maxItems"]) == (1, 1000)
    event_types = spec["components"]["schemas"]["CloudEvent"]["discriminator"]["mapping"]
    assert set(event_types) == {"programme.issued", "plan.submitted", "task.updated", "indicator.reported",
                                "unit-report.submitted", "supervision.recorded"}
    assert spec["components"]["schemas"]["TaskUpdated"]["properties"]["progress"]["maximum"] == 100
    assert set(post["responses"]) == {"202", "400", "401", "403", "413", "422", "429", "500", "503"}
    assert set(get["responses"]) == {"200", "401", "404", "429", "500", "503"}
    for status in ("400", "401", "403", "413", "422", "429", "500", "503"):
        assert list(post["responses"][status]["content"]) == ["application/problem+json"]
    assert post["responses"]["429"]["headers"]["Retry-After"]["required"]
    assert get["responses"]["503"]["headers"]["Retry-After"]["required"]
    whoami = spec["paths"]["/v1/whoami"]["get"]
    assert whoami["security"] == [{"unitKey": []}] and set(whoami["responses"]) == {"200", "401", "429", "500", "503"}
    assert whoami["responses"]["200"]["content"]["application/json"]["schema"]["required"] == ["unit", "key_id"]
