"""`tokenproof stripe-emulator` (also `python -m harness.emulator`): serve the emulator."""

from __future__ import annotations

import asyncio
import socket
import sys

import click
import uvicorn

from harness.emulator.defaults import (
    API_VERSION,
    DEFAULT_API_LATENCY_S,
    DEFAULT_PORT,
    DEFAULT_RETRY_DELAYS,
    DEFAULT_WEBHOOK_SECRET,
    parse_delays,
)
from harness.emulator.delivery import DeliverySettings
from harness.emulator.server import EmulatorConfig, build


@click.command("stripe-emulator", context_settings={"show_default": True})
@click.option("--port", type=click.IntRange(1, 65535), default=DEFAULT_PORT)
@click.option("--webhook-url", metavar="URL", help="Endpoint to POST signed events to.")
@click.option(
    "--webhook-secret",
    default=DEFAULT_WEBHOOK_SECRET,
    help="Signing secret (whsec_...); give the service the same one.",
)
@click.option(
    "--api-key",
    metavar="KEY",
    help="The one secret key the API accepts (401 for others). Default: any sk_test_/rk_test_.",
)
@click.option("--seed", type=int, default=0, help="Seed for ids and faults.")
@click.option(
    "--retry-delays",
    default=DEFAULT_RETRY_DELAYS,
    help="Seconds between webhook attempts.",
)
@click.option(
    "--api-latency",
    type=click.FloatRange(min=0),
    default=DEFAULT_API_LATENCY_S,
    help="Seconds each API request takes (a request holds its idempotency key meanwhile).",
)
@click.option("--api-version", default=API_VERSION, help="Account default.")
def stripe_emulator(
    port: int,
    webhook_url: str | None,
    webhook_secret: str,
    api_key: str | None,
    seed: int,
    retry_delays: str,
    api_latency: float,
    api_version: str,
) -> None:
    """Serve the stateful Stripe emulator on 127.0.0.1 until Ctrl-C.

    Point a service at it with STRIPE_API_BASE; inspect and steer it under
    /_control/ (state, delivery_rules, faults, release, reset).
    """
    if not webhook_secret.startswith("whsec_"):
        raise click.UsageError("--webhook-secret must start with whsec_")
    try:
        delays = parse_delays(retry_delays)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise click.UsageError(f"port {port} is taken; pass another --port") from exc
    config = EmulatorConfig(
        port=port,
        seed=seed,
        webhook_url=webhook_url,
        webhook_secret=webhook_secret,
        delivery=DeliverySettings(retry_delays_s=delays),
        api_key=api_key,
        api_latency_s=api_latency,
        api_version=api_version,
    )
    _, uv_config = build(config)
    click.echo(f"STRIPE_API_BASE=http://127.0.0.1:{port}")
    click.echo(f"STRIPE_WEBHOOK_SECRET={webhook_secret}")
    click.echo(f"STRIPE_SECRET_KEY={api_key or 'sk_test_<anything>'}")
    if webhook_url is None:
        click.echo("no --webhook-url: events are recorded but not delivered", err=True)
    sys.stdout.flush()
    try:
        asyncio.run(uvicorn.Server(uv_config).serve())
    except KeyboardInterrupt:
        sys.exit(130)
