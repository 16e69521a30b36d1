"""What one write or lookup by key costs the local FerretDB as a collection grows, the bound
behind the pipeline's figures: string `_id`s like the services' (task ids, event keys), one
operation at a time from PyMongo's async client, the mean over `--ops` keys spread over the
collection. The raw baseline is the same documents' `insert_many`, per document.

    .venv/bin/python bench/ferretdb.py                          # the provisioned FerretDB
    .venv/bin/python bench/ferretdb.py --binary PATH            # another build, to compare
    NQT_MONGO_URL=mongodb://... .venv/bin/python bench/ferretdb.py   # a running server
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import harness  # noqa: E402
from deploy.local import infra  # noqa: E402
from shared import mongo  # noqa: E402


async def measure(url: str, size: int, ops: int) -> dict[str, float]:
    """Milliseconds per operation on a fresh collection of `size` documents."""
    client = mongo.connect(url)
    try:
        tasks = client[f"bench_{secrets.token_hex(4)}"].tasks
        docs = [{"_id": f"SO-KHDT|KH-01|T{i:06d}", "seq": 1, "status": "in_progress", "progress": i % 100,
                 "programme": "01", "title": "Nhiệm vụ " * 8} for i in range(size)]
        keys = [d["_id"] for d in docs[:: max(1, size // ops)]][:ops]
        ms = {}

        async def timed(name, run):
            started = time.perf_counter()
            await run()
            ms[name] = (time.perf_counter() - started) * 1000

        await timed("insert_many, per document", lambda: tasks.insert_many(docs, ordered=False))
        ms["insert_many, per document"] /= size

        async def each(op):
            for key in keys:
                await op(key)

        await timed("find_one by _id", lambda: each(lambda k: tasks.find_one({"_id": k})))
        await timed("update_one by _id", lambda: each(lambda k: tasks.update_one({"_id": k}, {"$set": {"p": 1}})))
        await timed("guarded update_one {_id, seq}",
                    lambda: each(lambda k: tasks.update_one({"_id": k, "seq": 1}, {"$inc": {"seq": 1}})))
        for name in ms:
            if name != "insert_many, per document":
                ms[name] /= len(keys)
        await timed(f"find {len(keys)} by _id $in, whole query", lambda: tasks.find({"_id": {"$in": keys}}).to_list())
        await tasks.database.client.drop_database(tasks.database.name)
        return ms
    finally:
        await client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="200,2000,20000", help="collection sizes (documents)")
    parser.add_argument("--ops", type=int, default=50, help="keys looked up or written per figure")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--binary", type=Path, help="a FerretDB binary to start instead of the provisioned one")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    url = os.environ.get("NQT_MONGO_URL")
    server = None
    if not url:
        workdir = Path(tempfile.mkdtemp(prefix="nqt-ferretdb-"))
        server = infra.start_ferretdb(workdir, infra.free_port(), binary=args.binary)
        url = f"mongodb://127.0.0.1:{server.port}"
    try:
        print(f"One operation at a time by string _id on {url} ({args.binary or 'the provisioned FerretDB'}); "
              f"ms per operation over {args.ops} keys, --repeat {args.repeat}")
        figures = {}
        for size in sizes:
            runs = [asyncio.run(measure(url, size, args.ops)) for _ in range(args.repeat)]
            print(f"\n{size:,} documents\n{harness.header()}")
            insert = harness.spread(r["insert_many, per document"] for r in runs)[1]
            for name in runs[0]:
                values = [r[name] for r in runs]
                print(harness.row(name, values, unit="ms", baseline=None if name.startswith("insert") else insert))
            figures[f"ferretdb_guarded_update_ms_{size}"] = harness.spread(
                r["guarded update_one {_id, seq}"] for r in runs)[1]
        harness.write_results(figures, script="ferretdb")
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
