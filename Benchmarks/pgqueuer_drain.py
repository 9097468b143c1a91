"""Drains N no-op jobs through pgqueuer (PyPI) on the given database and prints the rate.

The comparison for Benchmarks/drain: pgqueuer's own drain setup (jobs enqueued first,
then 2 dequeuers with batch 10 in drain mode), written against pgqueuer's public API
because the PyPI wheel does not ship its tools/benchmark.py.

    python pgqueuer_drain.py DSN [--jobs N] [--dequeuers 2] [--batch 10]
"""

import argparse
import asyncio
import time

import asyncpg
from pgqueuer import AsyncpgDriver, PgQueuer, Queries
from pgqueuer.domain.types import QueueExecutionMode


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dsn")
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--dequeuers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=10)
    args = parser.parse_args()

    setup = Queries(AsyncpgDriver(await asyncpg.connect(dsn=args.dsn)))
    if not await setup.schema_is_installed():
        await setup.install()
    await setup.clear_queue()
    for start in range(0, args.jobs, 10_000):
        size = min(10_000, args.jobs - start)
        await setup.enqueue(["noop"] * size, [None] * size, [0] * size)

    done = 0
    workers = []
    for _ in range(args.dequeuers):
        pgq = PgQueuer(AsyncpgDriver(await asyncpg.connect(dsn=args.dsn)))

        @pgq.entrypoint("noop")
        async def noop(job) -> None:  # the job does nothing: this measures the queue
            nonlocal done
            done += 1

        workers.append(pgq)

    started = time.monotonic()
    await asyncio.gather(*(w.run(batch_size=args.batch, mode=QueueExecutionMode.drain) for w in workers))
    elapsed = time.monotonic() - started
    print(f"pgqueuer drain: {done} no-op jobs in {elapsed:.2f} s = {done / elapsed:.0f} jobs/s "
          f"({args.dequeuers} dequeuers, batch {args.batch})")
    print(f"PGQUEUER_RATE={done / elapsed:.0f}")


asyncio.run(main())
