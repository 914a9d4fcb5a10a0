"""Load figures, in two parts.

1. The checkers on an hour's op stream: a synthetic stream of `--ops` ops (3
   million by default: about an hour at 500 requests/s) written as the Locust
   master writes it, then read and folded by a fresh process, as
   `tokenproof load` does. Printed: that process's peak resident memory, the
   check time per 100k ops, and the time from the end of the stream to the
   verdict (`finish` on a final state).
2. Real runs on the reference with webhook chaos, for each of `--processes`
   (1, 2 and 4 by default) Locust processes: requests checked per second,
   the verdict, and the time from Locust's exit to the verdict.

    .venv/bin/python benchmarks/load.py [--ops 3000000] [--duration 30] [--processes 1 2 4]
    .venv/bin/python benchmarks/load.py --skip-real      # part 1 only
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

FANS, CREATORS = 200, 20
ROUTES = ("tip",) * 5 + ("deduct",) * 3 + ("balance",) * 3 + ("purchase",) * 2


def write_stream(path: Path, ops: int, seed: int = 1) -> None:
    """`ops` ops (invoke, then its completion) from 100 Locust users, interleaved
    in batches as workers send them; a tenth of the transfers keyed and retried."""
    rng = random.Random(seed)
    in_flight: list[dict[str, object]] = []
    written = 0
    intents = path.with_suffix(".intents")
    with path.open("w", encoding="utf-8") as f, intents.open("w", encoding="utf-8") as stripe:
        call = 0
        while written < ops:
            if len(in_flight) < 100 and written + len(in_flight) < ops:
                call += 1
                route = rng.choice(ROUTES)
                user = f"load-bench-fan-{rng.randrange(FANS)}"
                args: dict[str, object] = {}
                if route in ("tip", "deduct"):
                    args = {
                        "creatorId": f"load-bench-creator-{rng.randrange(CREATORS)}",
                        "tokenAmount": rng.randint(1, 5),
                    }
                    if rng.random() < 0.5:
                        args["clientIdempotencyKey"] = f"k-{call:x}"
                elif route == "purchase":
                    args = {"tokenAmount": 100, "paymentMethodId": "pm_card_visa"}
                op = {
                    "process": call,
                    "worker": f"w{call % 100}",
                    "f": route,
                    "user": user,
                    "args": args,
                    "status": None,
                    "body": None,
                    "error": None,
                }
                in_flight.append(op)
                f.write(json.dumps({**op, "type": "invoke", "time_s": written / 1000}) + "\n")
            else:
                op = in_flight.pop(rng.randrange(len(in_flight)))
                body: object = {"success": True, "balance": 1000}
                if op["f"] == "purchase":
                    body = {"success": True, "paymentIntent": {"id": f"pi_{op['process']}"}}
                    stripe.write(f"pi_{op['process']} {op['user']}\n")
                done = {**op, "type": "ok", "status": 200, "body": body, "time_s": written / 1000}
                f.write(json.dumps(done) + "\n")
            written += 1


def fold_stream(path: str) -> dict[str, float]:
    """Run in a fresh process: read and fold the stream as `tokenproof load` does."""
    from harness.checkers import Checks
    from harness.load.stream import READ_AT_MOST, OpFile, Tally
    from harness.state import Intent, StripeState, empty_observation

    checks, tally = Checks(), Tally()
    reader = OpFile(Path(path), checks, tally)
    started = time.perf_counter()
    per_100k: list[float] = []
    mark, mark_ops = started, 0
    while reader.read_new():  # one chunk's worth per call, as at every tick
        if reader.read_ops - mark_ops >= 100_000:
            now = time.perf_counter()
            per_100k.append((now - mark) / (reader.read_ops - mark_ops) * 100_000)
            mark, mark_ops = now, reader.read_ops
    folded = time.perf_counter() - started
    stopped = time.perf_counter()
    # The final state: Stripe's intents for the purchases (a real run reads them
    # from the emulator), and no rows (the checkers' cost on the op stream alone).
    intents: list[Intent] = []
    for line in Path(path).with_suffix(".intents").read_text().splitlines():
        pi, user = line.split()
        intents.append({"id": pi, "status": "processing", "metadata": {"userId": user}})
    final = replace(empty_observation(), stripe=StripeState(tuple(intents), (), (), ()))
    results = checks.finish(final, reader.ops_at)
    verdict_s = time.perf_counter() - stopped
    return {
        "ops": reader.read_ops,
        "requests": tally.requests,
        "fold_s": folded,
        "per_100k_s": sorted(per_100k)[len(per_100k) // 2] if per_100k else folded,
        "verdict_s": verdict_s,
        "checkers": len(results),
        "violations": sum(len(r.violations) for r in results),
        "chunk_mb": READ_AT_MOST / 2**20,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def synthetic(ops: int) -> None:
    with tempfile.TemporaryDirectory(prefix="tokenproof-bench-") as folder:
        path = Path(folder) / "ops.jsonl"
        started = time.perf_counter()
        write_stream(path, ops)
        size = path.stat().st_size
        took = time.perf_counter() - started
        print(f"stream: {ops:,} ops, {size / 2**20:,.0f} MB, written in {took:.0f} s")
        code = (
            "import json; from benchmarks.load import fold_stream; "
            f"print(json.dumps(fold_stream({str(path)!r})))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        figures = json.loads(out.stdout)
    print(
        f"checkers on the stream: peak RSS {figures['peak_rss_mb']:.0f} MB for "
        f"{figures['ops']:,} ops ({figures['requests']:,} requests); "
        f"{figures['per_100k_s']:.2f} s per 100k ops (median), {figures['fold_s']:.0f} s in all; "
        f"verdict {figures['verdict_s']:.2f} s after the last op "
        f"({figures['violations']} violations: the rows are left out on purpose)"
    )


def real(duration: int, processes: list[int]) -> None:
    from harness.load.report import LoadSettings
    from harness.load.run import run_load
    from harness.provisioning import PostgresSettings
    from harness.target.start import TargetSpec, open_target

    print("| processes | requests checked | checked req/s | verdict | verdict after stop |")
    print("| --- | --- | --- | --- | --- |")
    with open_target(TargetSpec("reference"), PostgresSettings.resolve()) as target:
        for count in processes:
            settings = LoadSettings(
                users=100, spawn_rate=100, duration_s=duration, processes=count, webhook_chaos=True
            )
            out = Path(tempfile.mkdtemp(prefix="tokenproof-load-bench-"))
            report = run_load(target, settings, out)
            print(
                f"| {count} | {report.requests:,} | {report.requests / report.duration_s:,.0f} | "
                f"{report.verdict} | {report.verdict_after_s:.1f} s |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=3_000_000)
    parser.add_argument("--duration", type=int, default=30)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--skip-real", action="store_true")
    args = parser.parse_args()
    synthetic(args.ops)
    if not args.skip_real:
        real(args.duration, args.processes)


if __name__ == "__main__":
    main()
