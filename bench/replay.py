"""Benchmark: `nqt replay`, the programs and reports services' state rebuilt from the Kafka log.

    .venv/bin/python bench/replay.py                                  # --scale 0.01: 10,000 events
    .venv/bin/python bench/replay.py --scale 0.0003 --repeat 1        # a few hundred events (quick)
    .venv/bin/python bench/replay.py --scale 1 --timeout 86400 --pipeline-figures  # the whole term

Each run (fresh topics and databases under a prefix of its own) first runs bench/pipeline.py's
run once (`pipeline.one_run`): the generated term (bench/reports.py's `Term`) is published onto
`events.accepted` and goes through the programs and reports services, so `programs.changes` holds
the history, and the raw baseline is measured on the same topic and FerretDB (aiokafka `getmany`
of every record, then `insert_many` of the N task documents into a scratch database). Its
figures are printed as pipeline.py prints them, untimed here; with --pipeline-figures they are
also reported and merged into bench/results/latest.json as pipeline.py's own, so one `--scale 1`
run gives the whole term's pipeline, status and replay figures.

Then, timed, `nqt replay --services programs,reports --compare` (the same function the command
runs, in this process): both topics read from the start and applied with the services' batch
code into `replay_*` databases. Figure = N task events / seconds of reading and applying
(the fingerprints after it are not timed), beside the baseline's events/s. The verdict of the
comparison with the live databases is printed, so a fast figure cannot hide a wrong state.
Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import harness, pipeline  # noqa: E402
from bench.reports import Term  # noqa: E402
from nqt.replay import Replayed, replay  # noqa: E402
from services.programs.settings import ProgramsSettings  # noqa: E402
from shared import mongo  # noqa: E402

SERVICES = ["programs", "reports"]


@dataclass
class Result:
    piped: pipeline.Result       # the pipeline run that filled the log
    replayed: Replayed
    rss: dict[str, float]

    @property
    def events(self) -> int:     # task.updated events of the term (the pipeline's N)
        return self.piped.events

    @property
    def base(self) -> dict:      # pipeline.baseline's figures
        return self.piped.base

    @property
    def seconds(self) -> float:
        return self.replayed.seconds

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    @property
    def identical(self) -> bool:
        return self.replayed.identical


async def drop(url: str, databases: list[str]) -> None:
    """The replay's databases, once measured (Kafka and FerretDB may be shared)."""
    client = mongo.connect(url)
    try:
        for name in databases:
            await client.drop_database(name)
    finally:
        await client.close()


def one_run(infra: harness.Infra, n_run: int, term: Term, args, logs: Path) -> Result:
    piped = pipeline.one_run(infra, n_run, term, args, logs)  # fills the log; prints its own figures
    run = replace(infra, prefix=f"{infra.prefix}r{n_run}")
    settings = ProgramsSettings(kafka_bootstrap=run.kafka, mongo_url=run.mongo, topic_prefix=f"{run.prefix}.",
                                db_prefix=run.prefix)
    with harness.RssSampler({"replay": os.getpid(), **infra.pids()}) as rss:
        replayed = asyncio.run(replay(settings, services=SERVICES, compare=True, batch=args.replay_batch))
    asyncio.run(drop(run.mongo, [printed.database for printed in replayed.prints.values()]))
    result = Result(piped, replayed, harness.peak_rss([piped.rss, rss.peak]))  # services too
    verdict = "identical to the live databases" if result.identical else "DIFFERENT from the live databases"
    print(f"  replay: {replayed.events:,} records ({', '.join(f'{t} {n:,}' for t, n in replayed.records.items())}) "
          f"in {result.seconds:.1f} s: {result.rate:,.0f} task events/s; the state is {verdict}", flush=True)
    return result


def report(args, results: list[Result], n: int, tasks: int) -> int:
    if args.pipeline_figures:  # the runs that filled the log, reported as bench/pipeline.py's own
        pipeline.report(args, [r.piped for r in results], n, tasks)
    rates = [r.rate for r in results]
    bases = [r.base["events_per_s"] for r in results]
    ratios = [r.rate / r.base["events_per_s"] for r in results]
    rate, base = harness.spread(rates)[1], harness.spread(bases)[1]
    rss = harness.peak_rss([r.rss for r in results])
    print()
    print(f"Replay: the programs and reports state rebuilt from events.accepted and programs.changes "
          f"({n:,} task.updated events, {tasks:,} tasks, --scale {args.scale:g}); --repeat {args.repeat}")
    print(harness.header())
    print(harness.row("replay, events/s", rates, unit="/s", baseline=base))
    print(harness.row("replay / baseline", ratios, unit="x"))
    print(harness.row("raw baseline (getmany + insert_many)", bases, unit="/s"))
    print(harness.row("replay seconds", [r.seconds for r in results], unit="s"))
    print(f"  events/s = N task events / seconds reading both topics and applying them (fingerprints not "
          f"included); baseline as bench/pipeline.py's, on events.accepted. Identical to the live databases: "
          f"{sum(r.identical for r in results)} of {len(results)} runs.")
    print("  peak RSS: " + ", ".join(f"{name} {mb:,.0f} MB" for name, mb in sorted(rss.items())))
    seconds = harness.spread([r.seconds for r in results])[1]
    figures = {
        "replay_events_per_s": round(rate, 1),
        "replay_seconds": round(seconds, 1),
        "replay_baseline_events_per_s": round(base, 1),
        "replay_ratio": float(f"{rate / base:.3g}") if base else None,
        "replay_scale": args.scale,
        "replay_events": n,
        "replay_identical": all(r.identical for r in results),
        "replay_spread": {"events_per_s": harness.summary(rates), "seconds": harness.summary(
            [r.seconds for r in results]), "ratio": harness.summary(ratios)},
        "replay_settings": {"scale": args.scale, "repeat": args.repeat, "replay_batch": args.replay_batch,
                            "baseline_batch": args.batch, "seed": args.seed, "services": SERVICES},
    }
    path = harness.write_results(figures, script="replay", rss=rss)
    print(f"results merged into {path}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    pipeline.term_arguments(parser, repeat=1, timeout=3600.0,
                            timeout_help="seconds the pipeline filling the log may take")
    parser.add_argument("--pipeline-figures", action="store_true",
                        help="also report the pipeline runs that fill the log, and merge their keys")
    parser.add_argument("--replay-batch", type=int, default=5000, help="records the replay applies together (5000)")
    args = parser.parse_args()
    args.profile, args.profile_duration = False, 0.0  # pipeline.one_run's options this script does not offer
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    if not 0 < args.scale <= 1 or args.repeat < 1 or args.timeout <= 0 or args.batch < 1 or args.replay_batch < 1:
        parser.error("--scale in (0, 1]; --repeat >= 1; --timeout > 0; --batch, --replay-batch >= 1")
    return pipeline.run_term(args, label="bench-replay", one_run=one_run, report=report)


if __name__ == "__main__":
    sys.exit(main())
