"""The model's rules about money coming in: card and 3-D Secure purchases, the
customer's side of 3-D Secure, webhook delivery modes, forged events, Stripe
outages and a slow Stripe."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import (
    rule,
)

from harness.checkers.responses import internal_text
from harness.contract import purchase_body
from harness.model.base import (
    KEYED,
    PRICES,
    THREE_DS,
    Keyed,
    ModelBase,
    Pending3DS,
    a_delivery,
    a_fan,
    logged_step,
)

CUSTOMER_ACTIONS = ("authenticate", "abandon", "fail")


class PaymentRules(ModelBase):
    keyed = KEYED
    three_ds = THREE_DS

    @rule(fan=a_fan)
    @logged_step
    def forged_success_for_declined(self, fan: str) -> None:
        """A declined purchase, then a badly signed `succeeded` for it: nothing credited."""
        body = purchase_body(100, "pm_card_chargeDeclined")
        answer = self._call("purchase", self.uid(fan), body)
        assert answer.status == 402, f"a declined card answered {answer}"
        intent = answer.body.get("paymentIntentId") if isinstance(answer.body, dict) else None
        if isinstance(intent, str):
            result = self.target.emulator.forge(intent, signature="forged")
            statuses = [a["status"] for a in result["attempts"]]
            assert all(s is not None and 400 <= s < 500 for s in statuses), (
                f"a forged event was answered {statuses}"
            )

    @rule(
        target=keyed,
        fan=a_fan,
        tokens=st.sampled_from(sorted(PRICES)),
        method=st.sampled_from(["pm_card_visa", "pm_card_chargeDeclined"]),
        delivery=a_delivery,
    )
    @logged_step
    def purchase(self, fan: str, tokens: int, method: str, delivery: str | None) -> Any:
        """A card purchase; `delivery`: how its events (and the next purchases')
        arrive, chosen in the same step, so that a credit per duplicated event is
        found whatever else an example draws."""
        key = f"p{next(self.keys)}"
        body = purchase_body(tokens, method, key)
        self._deliver(delivery)
        answer = self._call("purchase", self.uid(fan), body)
        if method == "pm_card_visa":
            assert answer.status == 200, f"a card purchase answered {answer}"
            self.model.balances[self.uid(fan)] += tokens + PRICES[tokens]
        else:
            assert answer.status == 402, f"a declined card answered {answer}"
        self._settle()
        return Keyed("purchase", self.uid(fan), body, answer)

    @rule(
        target=three_ds,
        fan=a_fan,
        tokens=st.sampled_from([100, 500]),
        then=st.sampled_from([None, *CUSTOMER_ACTIONS]),
    )
    @logged_step
    def purchase_three_ds(self, fan: str, tokens: int, then: str | None = None) -> Any:
        """A 3-D Secure purchase; `then`: what the customer does at once, in the
        same step (None: later, or never, by `customer_acts`), so an abandoned
        purchase is found whatever else an example draws."""
        body = purchase_body(tokens, "pm_card_threeDSecure2Required")
        answer = self._call("purchase", self.uid(fan), body)
        assert answer.status == 200, f"a 3DS purchase answered {answer}"
        pending = Pending3DS(answer.body["paymentIntent"]["id"], self.uid(fan), tokens)
        if then is not None:
            self._customer(pending, then)
        return pending

    @rule(pending=three_ds, action=st.sampled_from(CUSTOMER_ACTIONS))
    @logged_step
    def customer_acts(self, pending: Pending3DS, action: str) -> None:
        self._customer(pending, action)

    def _customer(self, pending: Pending3DS, action: str) -> None:
        if pending.done:
            return
        pending.done = True
        self.target.emulator.customer(pending.intent, action)
        if action == "authenticate":
            self.model.balances[pending.user] += pending.tokens
        self._settle()

    @rule(
        mode=st.sampled_from(
            [
                "duplicate",
                "parallel",
                "reorder",
                "delay",
                "hold",
                "drop_first",
                "forge",
                "stale",
                "before_response",
                "immediate",
            ]
        )
    )
    @logged_step
    def webhook_delivery(self, mode: str) -> None:
        """How the next purchases' events arrive."""
        self._deliver(mode)

    @rule(target=keyed, fan=a_fan, tokens=st.sampled_from([100, 500]))
    @logged_step
    def purchase_during_outage(self, fan: str, tokens: int) -> Any:
        """Stripe answers 500 to every call: the purchase fails cleanly (502 or 503,
        no internal text, nothing credited). Its retry after the outage (the `retry`
        rule) must then succeed. The 500 says Stripe-Should-Retry: false, so the
        SDK gives up at once instead of spending seconds in backoff on every
        replay (the faults suite covers an outage the SDK retries through)."""
        key = f"p{next(self.keys)}"
        body = purchase_body(tokens, "pm_card_visa", key)
        self.target.emulator.add_fault("error", status=500, should_retry=False)
        try:
            # Not recorded: its 5xx is the expected answer, not a server error.
            answer = self._call("purchase", self.uid(fan), body, record=False)
        finally:
            self.target.emulator.clear_faults()
        assert answer.status in (502, 503), f"a purchase during a Stripe outage answered {answer}"
        leaked = internal_text(str(answer.body))
        assert not leaked, f"an outage answer carries internal text {leaked}: {answer.body}"
        self._settle()
        return Keyed("purchase", self.uid(fan), body, answer)
