"""`TokenModel`: the state machine with every rule, bound to a target per run."""

from __future__ import annotations

from harness.model.control import Tally
from harness.model.faults import FaultRules
from harness.model.payments import PaymentRules
from harness.model.transfers import TransferRules
from harness.target.start import Target


class TokenModel(PaymentRules, TransferRules, FaultRules):
    """Bound to a target with `TokenModel.bind(target)` before a run."""

    @classmethod
    def bind(cls, target: Target, tally: Tally | None = None) -> type[TokenModel]:
        return type("TokenModelRun", (cls,), {"target": target, "tally": tally or Tally()})
