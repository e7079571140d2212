"""Run every benchmark once and print their headline figures in one table.

    .venv/bin/python -m bench.run_all [--database postgresql://postgres@127.0.0.1:5432]

bench_load (burst 150@30 and a sustained 8/s for 30 s; the ten-times burst, the two-replica
run and profiling are `python -m bench.bench_load` options), then bench_ack and bench_memory.

Ratios are bot/bare from the same run on the same machine; absolute times depend on the machine.
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import argparse
import asyncio
import time

from bench import bench_ack, bench_load, bench_memory
from bench.harness import table


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="sqlite",
                        help="sqlite (a temp file) or a PostgreSQL server URL")
    database = parser.parse_args().database
    began = time.perf_counter()
    figures: dict[str, float] = {}
    for bench in (bench_load, bench_ack, bench_memory):
        print(f"\n== {bench.__name__}")
        figures |= await bench.main(["--database", database])
    print(f"\n== summary ({database}, {time.perf_counter() - began:.0f}s)")
    print(table(["figure", "value"], [[name, value] for name, value in figures.items()]))


if __name__ == "__main__":
    asyncio.run(main())
