"""Killing notify (SIGKILL) in the middle of a burst of notices and starting it again:
counted by identity, every notice arrives, none twice except the one in flight."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter

from aiosmtpd.controller import Controller

from deploy.local import infra, mailsink, stack
from shared import kafka
from tests import kafkatools
from tests.e2e.conftest import starter

UNITS = [f"SO-T{n:03d}" for n in range(150)]


class SlowMailbox(mailsink.Mailbox):
    """A real SMTP server that takes its time, so the burst lasts long enough to be cut."""

    async def handle_DATA(self, server, session, envelope) -> str:
        await asyncio.sleep(0.03)
        return await super().handle_DATA(server, session, envelope)


def change(code: str) -> bytes:
    state = {"code": code, "name": f"Đơn vị {code}", "kind": "department", "email": f"{code.lower()}@hanoi.example"}
    return kafka.dumps({"kind": "unit", "id": code, "programme": None, "seq": 0, "state": state,
                        "event_key": f"VPTU:r-{code}", "event_time": "2021-01-01T00:00:00.000000Z",
                        "accepted_at": "2021-01-01T00:00:00.000000Z", "version": "v"})


async def test_killed_in_a_burst_notify_delivers_each_notice_once_by_identity(infra_stack, tmp_path):
    mailbox = SlowMailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=infra.free_port())
    controller.start()
    prefix = f"{infra_stack.prefix}notifykill"
    ports = {name: infra.free_port() for name in stack.SERVICES}
    env = stack.service_env(kafka=infra_stack.kafka, mongo=infra_stack.mongo, smtp_port=controller.port,
                            ports=ports, dev_keys={},
                            extra={"NQT_TOPIC_PREFIX": f"{prefix}.", "NQT_DB_PREFIX": prefix, "NQT_ENV": "test",
                                   "NQT_TOPIC_PARTITIONS": "2", "NQT_CLOCK_FIXED": "2021-03-15T09:00:00+07:00",
                                   "NQT_NOTIFY_LEASE_SECONDS": "3", "NQT_NOTIFY_RETRY_SECONDS": "1",
                                   "NQT_NOTIFY_REPORT_REMINDER_DAYS": "0"})  # no reminders today: only the burst
    log = tmp_path / "notify.log"

    start = starter("notify", env, ports["notify"], log)

    proc = start()
    try:
        await kafkatools.produce(infra_stack.kafka, f"{prefix}.programs.changes", [change(u) for u in UNITS],
                                 key=b"registry")
        await asyncio.sleep(3)  # the units are known before the cycle opens (one partition, in order)
        event = {"id": "report-due-2021-Q1", "cycle": "2021-Q1", "kind": "quarterly", "due_date": "2021-03-16",
                 "window": {"start": "2020-12-15", "cut_off": "2021-03-14"}, "expected_units": UNITS}
        await kafkatools.produce(infra_stack.kafka, f"{prefix}.reports.due", [kafka.dumps(event)], key=b"2021-Q1")
        await kafkatools.eventually(lambda: _now(len(mailbox.snapshot())), lambda n: n >= 40, timeout=60,
                                    interval=0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        at_kill = len(mailbox.snapshot())
        proc = start()

        def identities():
            return Counter(m["X-NQT-Notification"] for m in mailbox.snapshot())
        final = await kafkatools.eventually(lambda: _now(identities()), lambda c: len(c) >= len(UNITS), timeout=120)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        controller.stop()
    assert 0 < at_kill < len(UNITS), f"the kill came in the middle of the burst ({at_kill})"
    expected = {f"cycle_opened|2021-Q1|{u}|2021-03-15" for u in UNITS}
    assert set(final) == expected                        # none missing, none unexpected
    repeats = {k: n for k, n in final.items() if n > 1}
    assert len(repeats) <= 1, repeats                    # at most the one in flight, under the same identity
    message_ids = {m["X-NQT-Notification"]: m["Message-ID"] for m in mailbox.snapshot()}
    assert len(set(message_ids.values())) == len(UNITS)


async def _now(value):
    return value
