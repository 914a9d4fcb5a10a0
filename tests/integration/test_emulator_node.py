"""The emulator through the official Node SDK, where Node.js is installed.

The Node script (tests/node/stripe_sdk_basics.cjs) drives the flows and verifies
webhooks with `stripe.webhooks.constructEvent` on its own endpoint; this test
then reads the emulator's state to confirm what the SDK did on the wire.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from contextlib import closing
from pathlib import Path

import pytest

from harness.emulator import DeliverySettings, EmulatorConfig, EmulatorThread
from harness.target.emulator_client import EmulatorClient

pytestmark = pytest.mark.needs_node

# Pinned so a new SDK release cannot change the test under us; bump on purpose.
NODE_STRIPE_VERSION = "23.1.0"
SCRIPT = Path(__file__).parents[1] / "node" / "stripe_sdk_basics.cjs"
CHECKS = [
    "purchase",
    "retrieve_and_list",
    "declines",
    "three_ds",
    "confirm_and_cancel",
    "pagination_and_events",
    "off_session_refund_auth",
    "idempotency",
    "retry_after_dropped_response",
    "forged_signature_rejected",
]


@pytest.fixture(scope="module")
def stripe_node(request: pytest.FixtureRequest) -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node is not None and npm is not None  # needs_node
    cache = request.config.cache
    assert cache is not None
    prefix = cache.mkdir(f"node-stripe-{NODE_STRIPE_VERSION}")
    module = prefix / "node_modules" / "stripe"
    if not (module / "package.json").exists():
        install = [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund"]
        result = subprocess.run(
            [*install, "--no-save", f"stripe@{NODE_STRIPE_VERSION}"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0:
            pytest.fail(f"npm could not install stripe@{NODE_STRIPE_VERSION}:\n{result.stderr}")
    return module


def test_node_sdk_flows(stripe_node: Path) -> None:
    delivery = DeliverySettings(retry_delays_s=(0.02, 0.05, 0.1), attempt_timeout_s=5)
    with EmulatorThread(EmulatorConfig(delivery=delivery)) as emulator:
        result = subprocess.run(
            ["node", str(SCRIPT)],
            env={
                **os.environ,
                "STRIPE_NODE_MODULE": str(stripe_node),
                "EMULATOR_URL": emulator.url,
            },
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        with closing(EmulatorClient(emulator.url)) as control:
            control.wait_settled()
            state = control.state()

    passed = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [p["check"] for p in passed] == CHECKS
    by_check = {p["check"]: p for p in passed}

    # The SDK keyed every POST itself and reused the key for its retry.
    dropped_id = by_check["retry_after_dropped_response"]["intent"]
    creates = [
        r for r in state["requests"] if r["method"] == "POST" and r["path"] == "/v1/payment_intents"
    ]
    auto_keyed = [r for r in creates if r["idempotency_key"] != "node-key-1"]
    assert all(str(r["idempotency_key"]).startswith("stripe-node-retry-") for r in auto_keyed)
    dropped = [r for r in creates if r.get("dropped")]
    assert len(dropped) == 1
    retry = [r for r in creates if r["idempotency_key"] == dropped[0]["idempotency_key"]]
    assert [bool(r.get("replayed")) for r in retry] == [False, True]
    assert [i["id"] for i in state["intents"] if i["metadata"].get("check") == "dropped"] == [
        dropped_id
    ]

    # Every delivery reached the Node endpoint; only the forged copy was refused.
    refused = [d for d in state["deliveries"] if d["status"] != 200]
    assert [(d["event_type"], d["status"], d["signature"]) for d in refused] == [
        ("payment_intent.succeeded", 400, "forged")
    ]
