"""A stateful Stripe emulator the official SDKs can talk to.

Imports nothing from the rest of the harness: it can run alone
(`tokenproof stripe-emulator`, `python -m harness.emulator`).
"""

from harness.emulator.core import Emulator
from harness.emulator.delivery import DeliveryRule, DeliverySettings, sign
from harness.emulator.faults import FaultRule
from harness.emulator.server import EmulatorConfig, EmulatorThread

__all__ = [
    "DeliveryRule",
    "DeliverySettings",
    "Emulator",
    "EmulatorConfig",
    "EmulatorThread",
    "FaultRule",
    "sign",
]
