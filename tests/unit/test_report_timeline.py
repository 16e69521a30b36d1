"""The timeline gives each task's latest status report as of a cut-off, as known at an
instant, exactly as the history filtered by both clocks does: whatever the event times, the
arrival times and the order and batches the reports are applied in."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.events import utc_iso

from services.reports import timeline, timeline_query
from services.reports.snapshot import latest_by_subject

START = datetime(2020, 10, 1, tzinfo=timezone.utc)
TASKS = ["T1", "T2", "T3", "T4"]
PROGRAMMES = {"T1": "01", "T2": "01", "T3": "02", "T4": "02"}


def instant(hours: int) -> str:
    return utc_iso(START + timedelta(hours=hours))


def report(n: int, task: str, event_h: int, delay_h: int, progress: int) -> dict:
    """A history row of a status report, as ReportsStore keeps it."""
    key = f"U:{n}"
    return {"_id": key, "kind": "task_report", "subject": task, "programme": PROGRAMMES[task],
            "version": f"{instant(event_h)}|{key}", "event_time": instant(event_h),
            "accepted_at": instant(event_h + delay_h), "data": {"status": "in_progress", "progress": progress}}


class Store:
    """The documents as `timeline.record` leaves them, in memory."""

    def __init__(self):
        self.docs: dict[str, dict] = {}

    def record(self, facts: list[dict]) -> None:
        opened = {d["programme"]: d for k, d in self.docs.items() if k.startswith("open|")}
        writes = timeline.build(opened, self.docs, facts)
        for doc in writes.seals:
            self.docs.setdefault(doc["_id"], doc)
        for doc in writes.kept + writes.opens:
            self.docs[doc["_id"]] = doc
        for key, entries in writes.late.items():
            self.docs.setdefault(key, {"_id": key, "entries": []})["entries"] += entries
        for key in writes.retired:
            self.docs.pop(key, None)  # a base never written (the first quarter) is not there


def expected(facts: list[dict], cut_off: str, known_at: str) -> dict[str, tuple]:
    known = [f for f in facts if f["event_time"] <= cut_off and f["accepted_at"] <= known_at]
    return {t: (f["version"], f["data"]["progress"]) for t, f in latest_by_subject(known).items()}


def answer(docs: dict[str, dict], cut_off: str, known_at: str) -> dict[str, tuple]:
    """`timeline_query.task_reports` over the documents in memory: only those it asks for, round by round."""
    plans = [{"programme": p, "data": {"tasks": [{"task_id": t} for t in TASKS if PROGRAMMES[t] == p]}}
             for p in ("01", "02")]
    query = timeline_query.Query(plans, cut_off, known_at)
    ids = query.first_ids()
    while ids := query.step({i: docs[i] for i in ids if i in docs}):
        pass
    return got(query.rows())


def got(rows: list[dict]) -> dict[str, tuple]:
    return {r["subject"]: (r["version"], r["data"]["progress"]) for r in rows}


HOURS = 24 * 365 * 2
facts_st = st.lists(st.tuples(st.sampled_from(TASKS), st.integers(0, HOURS),
                              st.one_of(st.integers(0, 2), st.integers(0, 24 * 30), st.integers(0, HOURS)),
                              st.integers(0, 100)), min_size=1, max_size=40)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(facts_st, st.randoms(use_true_random=False), st.lists(st.tuples(st.integers(0, HOURS + 200), st.integers(0, 2 * HOURS)),
                                                           min_size=1, max_size=8))
def test_the_timeline_says_what_the_filtered_history_says(raw, rng, queries):
    facts = [report(n, *item) for n, item in enumerate(raw)]
    # applied roughly in arrival order, as consumed, in batches of any size
    order = sorted(facts, key=lambda f: (f["accepted_at"], rng.random()))
    if rng.random() < 0.3:
        rng.shuffle(order)
    store = Store()
    while order:
        size = rng.randint(1, 6)
        store.record(order[:size])
        order = order[size:]
    for cut_h, known_h in queries:
        cut_off = timeline.cut_off_after(instant(cut_h)) if rng.random() < 0.7 else instant(cut_h)
        known_at = instant(known_h)
        assert answer(store.docs, cut_off, known_at) == expected(facts, cut_off, known_at)
    assert not [key for key, doc in store.docs.items() if key.startswith("open|") and "z" in doc]  # rewritten as bases


def test_a_past_cut_off_known_later_is_answered_with_late_reports_counted_by_arrival():
    facts = [report(1, "T1", 10, 1, 10),
             report(2, "T1", 24 * 200, 1, 50),            # after the first cut-off: seals it
             report(3, "T1", 24 * 70, 24 * 150, 30),      # dated before that cut-off, arriving months later
             report(4, "T3", 24 * 71, 24 * 300, 40)]
    store = Store()
    for fact in sorted(facts, key=lambda f: f["accepted_at"]):
        store.record([fact])
    cut_off = timeline.cut_off_after(instant(24 * 70))
    seen = {known_h: answer(store.docs, cut_off, instant(known_h)) for known_h in (24 * 100, 24 * 250, 24 * 400)}
    assert seen == {known_h: expected(facts, cut_off, instant(known_h)) for known_h in seen}
    assert seen[24 * 100]["T1"][1] == 10 and "T3" not in seen[24 * 100]
    assert seen[24 * 400]["T1"][1] == 30 and seen[24 * 400]["T3"][1] == 40


def test_cut_offs_are_the_ends_of_the_fourteenth_of_each_quarters_last_month_in_hanoi():
    assert timeline.cut_off_after("2021-03-14T16:59:59.999999Z") == "2021-03-14T16:59:59.999999Z"
    assert timeline.cut_off_after("2021-03-14T17:00:00.000000Z") == "2021-06-14T16:59:59.999999Z"
    assert timeline.cut_off_after("2021-12-20T00:00:00.000000Z") == "2022-03-14T16:59:59.999999Z"
    assert timeline.next_cut_off("2021-12-14T16:59:59.999999Z") == "2022-03-14T16:59:59.999999Z"


def quarter_reports(first: int, n: int, task_count: int = 40) -> list[dict]:
    """`n` status reports of programme 01, all in the quarter to 14 Mar 2021, applied as they arrive."""
    return [{**report(first + i, "T1", 24 * 80 + i % 500, 1, i % 101), "subject": f"T{i % task_count:03d}"}
            for i in range(n)]


def test_a_batch_writes_what_it_brings_however_full_the_quarter_is():
    early, late = Store(), Store()
    late.record(quarter_reports(0, 3000))
    early.record(quarter_reports(0, 30))
    sizes = []
    for store in (early, late):
        opened = {d["programme"]: d for k, d in store.docs.items() if k.startswith("open|")}
        writes = timeline.build(opened, store.docs, quarter_reports(5000, 20))
        assert not writes.seals and not writes.late
        sizes.append(sum(len(doc.get("z", b"")) + len(str(doc)) for doc in writes.kept + writes.opens))
    assert sizes[1] < 1.2 * sizes[0]  # the quarter 100 times as full: what a batch writes stays the same


def test_an_open_quarter_written_whole_is_continued_and_read_as_it_was():
    facts = [report(n, task, hours, delay, (n * 7) % 101)
             for n, (task, hours, delay) in enumerate((t, h, d) for h in range(0, 24 * 400, 24 * 9)
                                                      for t, d in (("T1", 1), ("T3", 24 * 60), ("T2", 2)))]
    store = Store()
    store.record(facts[:70])
    for key, doc in list(store.docs.items()):  # as the timeline kept the open quarter before its parts
        if key.startswith("open|"):
            state = timeline.open_state(doc, store.docs)
            for gone in timeline.state_ids(doc):
                store.docs.pop(gone, None)
            store.docs[key] = {**timeline.packed(key, state), "programme": doc["programme"], "cut": doc["cut"]}
    for start in range(70, len(facts), 5):
        store.record(facts[start:start + 5])
    for cut_h, known_h in ((24 * 100, 24 * 500), (24 * 200, 24 * 210), (24 * 390, 24 * 500), (24 * 330, 24 * 333)):
        cut_off, known_at = timeline.cut_off_after(instant(cut_h)), instant(known_h)
        assert answer(store.docs, cut_off, known_at) == expected(facts, cut_off, known_at)
    assert not [key for key, doc in store.docs.items() if key.startswith("open|") and "z" in doc]  # rewritten as bases
