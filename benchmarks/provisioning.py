"""Provisioning figures: server start time and fresh database with schema.

    .venv/bin/python benchmarks/provisioning.py [--repeat 20]

Prints, for embedded and system binaries: time to start a server (initdb +
postgres ready), time to build the schema template, and the median / p90 of
`repeat` fresh databases (CREATE DATABASE ... TEMPLATE), plus the drop time.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import reference_impl
from harness.provisioning import (
    DatabaseFactory,
    LocalPostgres,
    PostgresBinaries,
    PostgresBinariesNotFound,
    embedded_binaries,
    system_binaries,
)


async def _databases(server: LocalPostgres, repeat: int) -> tuple[float, list[float], float]:
    t0 = time.perf_counter()
    factory = await DatabaseFactory.open(server, reference_impl.schema_files())
    template_s = time.perf_counter() - t0
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        await factory.create()
        samples.append(time.perf_counter() - t)
    t = time.perf_counter()
    await factory.close()
    return template_s, samples, time.perf_counter() - t


def measure(binaries: PostgresBinaries, repeat: int) -> None:
    t0 = time.perf_counter()
    server = LocalPostgres(binaries)
    server.start()
    start_s = time.perf_counter() - t0
    try:
        template_s, samples, close_s = asyncio.run(_databases(server, repeat))
    finally:
        t = time.perf_counter()
        server.stop()
        stop_s = time.perf_counter() - t
    ordered = sorted(samples)
    print(
        f"{binaries.origin:<9} PG {binaries.version().split(')')[-1].split()[0]:<6} "
        f"start {start_s * 1000:7.0f} ms | template {template_s * 1000:5.0f} ms | "
        f"fresh db median {statistics.median(samples) * 1000:5.1f} ms "
        f"p90 {ordered[int(0.9 * (len(ordered) - 1))] * 1000:5.1f} ms (n={repeat}) | "
        f"drop all {close_s * 1000:5.0f} ms | stop {stop_s * 1000:5.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    measure(embedded_binaries(), args.repeat)
    try:
        system = system_binaries("auto")
    except PostgresBinariesNotFound as exc:
        print(f"system    skipped: {exc}")
        return
    measure(system, args.repeat)


if __name__ == "__main__":
    main()
