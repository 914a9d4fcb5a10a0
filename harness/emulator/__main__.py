"""`python -m harness.emulator --port P --webhook-url URL --webhook-secret S`."""

from __future__ import annotations

import argparse
import asyncio
import sys

import uvicorn

from harness.emulator.delivery import DeliverySettings
from harness.emulator.server import EmulatorConfig, build


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--webhook-url")
    parser.add_argument("--webhook-secret", default="whsec_tokenproof_test_secret")
    parser.add_argument(
        "--retry-delays", default="0.05,0.2,0.5,1,2", help="seconds between webhook attempts"
    )
    args = parser.parse_args(argv)
    try:
        delays = tuple(float(x) for x in args.retry_delays.split(",") if x)
    except ValueError:
        parser.error("--retry-delays takes comma-separated seconds, e.g. 0.05,0.2,1")
    if not args.webhook_secret.startswith("whsec_"):
        parser.error("--webhook-secret must start with whsec_")
    config = EmulatorConfig(
        host=args.host,
        port=args.port,
        seed=args.seed,
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
        delivery=DeliverySettings(retry_delays_s=delays),
    )
    _, uv_config = build(config)
    print(f"STRIPE_API_BASE=http://{args.host}:{args.port}", flush=True)
    print(f"STRIPE_WEBHOOK_SECRET={args.webhook_secret}", flush=True)
    print("STRIPE_SECRET_KEY=sk_test_<anything>", flush=True)
    asyncio.run(uvicorn.Server(uv_config).serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
