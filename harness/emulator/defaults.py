"""The emulator's defaults, in one place for the server, the CLI and the harness."""

from __future__ import annotations

# The API version an account without a pinned version gets, in headers and events,
# when a request names none (a request's Stripe-Version is echoed back).
API_VERSION = "2025-03-31.basil"
DEFAULT_PORT = 12111
DEFAULT_WEBHOOK_SECRET = "whsec_tokenproof_test_secret"
# Stripe's processing time per API request, modelled (real seconds): a request
# holds its idempotency key this long, so same-key requests sent together meet
# Stripe's 409. Off by default: each sleeping request costs the emulator an
# idle wake-up (about 0.25 ms of CPU measured), and the harness's throughput
# matters more; `--api-latency 0.002` covers requests sent at the same moment.
DEFAULT_API_LATENCY_S = 0.0
# Seconds between webhook attempts: fast, so a run sees retries within seconds.
DEFAULT_RETRY_DELAYS_S: tuple[float, ...] = (0.05, 0.2, 0.5, 1.0, 2.0)


def format_delays(delays: tuple[float, ...]) -> str:
    """`0.05,0.2,0.5,1,2`: the form `--retry-delays` takes."""
    return ",".join(f"{d:g}" for d in delays)


DEFAULT_RETRY_DELAYS = format_delays(DEFAULT_RETRY_DELAYS_S)


def parse_delays(text: str) -> tuple[float, ...]:
    """Comma-separated non-negative seconds; raises ValueError with a usable message."""
    try:
        delays = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ValueError("--retry-delays takes comma-separated seconds, e.g. 0.05,0.2,1") from None
    if any(d < 0 for d in delays):
        raise ValueError("--retry-delays must not be negative")
    return delays
