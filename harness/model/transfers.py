"""The model's rules about tokens moving: tips and call minutes, bad amounts and
tokens, retries of keyed requests, double submits and gated bursts (a burst
must match some serial order)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from hypothesis import strategies as st
from hypothesis.stateful import (
    multiple,
    rule,
)
from hypothesis.strategies import SearchStrategy

from harness.contract import purchase_body
from harness.dialect.wire import sign_token
from harness.model.base import (
    CREATORS,
    FANS,
    KEYED,
    PRICES,
    THREE_DS,
    TRANSFERS,
    Keyed,
    ModelBase,
    a_creator,
    a_fan,
    a_transfer,
    a_transfer_amount,
    logged_step,
)
from harness.target.client import Answer

Rule = TypeVar("Rule", bound=Callable[..., Any])
# Amounts the contract refuses with 400: trailing text, exponents, spaces, a
# leading zero, fractions, signs, zero, booleans, null, lists, objects, numbers
# above 10^9 (the contract's list).
BAD_AMOUNTS: tuple[Any, ...] = (
    "12abc",
    "1e1",
    " 5",
    "0100",
    1.5,
    "1.5",
    -5,
    "-5",
    0,
    True,
    None,
    [5],
    {"n": 5},
    10**9 + 1,
)


# A keyed request of any kind: a transfer, or a purchase (its amount picks a package).
a_keyed_kind = st.sampled_from([*TRANSFERS, "purchase"])


def _keyed_rule(
    kind: SearchStrategy[str] = a_transfer, **more: SearchStrategy[Any]
) -> Callable[[Rule], Rule]:
    """A rule that makes one keyed request (`kind`, fan, creator, amount, and
    `more`) and keeps it in `keyed` for retries."""
    # For all mypy knows `more` could hold `targets`, which no overload of `rule`
    # takes with `target`; the keys are the rules' own argument names.
    any_rule = cast("Callable[..., Callable[[Rule], Rule]]", rule)
    return any_rule(
        target=KEYED, f=kind, fan=a_fan, creator=a_creator, amount=a_transfer_amount, **more
    )


class TransferRules(ModelBase):
    keyed = KEYED
    three_ds = THREE_DS

    @_keyed_rule(with_key=st.booleans())
    @logged_step
    def transfer(self, f: str, fan: str, creator: str, amount: int, with_key: bool) -> Any:
        key = f"k{next(self.keys)}" if with_key else None
        body = self._transfer_body(f, creator, amount, key)
        answer = self._call(f, self.uid(fan), body)
        self._expect_transfer(answer, fan, creator, amount)
        return Keyed(f, self.uid(fan), body, answer) if key else multiple()

    @rule(fan=a_creator, amount=st.integers(1, 10))
    @logged_step
    def self_transfer(self, fan: str, amount: int) -> None:
        answer = self._call("tip", self.uid(fan), self._transfer_body("tip", fan, amount, None))
        assert 400 <= answer.status < 500, f"a self tip answered {answer}"

    @rule(f=a_transfer, fan=a_fan)
    @logged_step
    def bad_amounts(self, f: str, fan: str) -> None:
        """Every malformed amount the contract names, one request each: 400 exactly
        (a 402 would mean the amount was parsed into something and checked
        against the balance), and nothing moves. All in one step, so a lenient
        parser is found whatever else an example draws."""
        for amount in BAD_AMOUNTS:
            body = self._transfer_body(f, CREATORS[0], 1, None)
            body["tokenAmount"] = amount
            answer = self._call(f, self.uid(fan), body)
            assert answer.status == 400, f"amount {amount!r} answered {answer}"

    @rule(fan=a_fan)
    @logged_step
    def token_without_exp(self, fan: str) -> None:
        self.tally.stop_if_cancelled()
        token = sign_token(self.target.dialect, self.uid(fan), self.target.jwt_secret, ttl_s=None)

        async def go() -> Answer:
            return await self.client.send("balance", None, token=token)

        answer = self.loop.run_until_complete(go())
        assert answer.status == 401, f"a token without exp answered {answer.status}"

    @_keyed_rule(a_keyed_kind, copies=st.integers(2, 8))
    @logged_step
    def double_submit(self, f: str, fan: str, creator: str, amount: int, copies: int) -> Any:
        """A new keyed request sent `copies` times at once, on the key's first use
        (a double click, a client's retries): money moves once, a purchase charges
        once, and every copy answers alike, except that a copy may be told 409
        while the first is in flight. Catches key checks that race."""
        key = f"k{next(self.keys)}"
        if f == "purchase":
            tokens = sorted(PRICES)[amount % len(PRICES)]
            body = purchase_body(tokens, "pm_card_visa", key)
            answers = self._fire_together([(f, self.uid(fan), body)] * copies)
        else:
            body = self._transfer_body(f, creator, amount, key)
            answers = self._fire_gated([(f, self.uid(fan), body)] * copies)
        outcomes = {a.status for a in answers} - {409}
        assert len(outcomes) == 1, f"{copies} copies of one keyed {f} answered {answers}"
        first = next(a for a in answers if a.status != 409)
        if f == "purchase":
            intents = {_intent_of(a) for a in answers if a.status == 200}
            assert first.status == 200 and len(intents) == 1, (
                f"{copies} copies of one keyed purchase answered {answers}"
            )
            self.model.balances[self.uid(fan)] += tokens + PRICES[tokens]
            self._settle()
        else:
            self._expect_transfer(first, fan, creator, amount)
        return Keyed(f, self.uid(fan), body, first)

    @rule(request=keyed, more=st.integers(1, 50))
    @logged_step
    def reuse_key_with_another_body(self, request: Keyed, more: int) -> None:
        """A key already used, now with another amount: a 4xx, and no money moves
        (the contract's rule for a reused key with a different body). Keys whose
        first answer was a 5xx or a 400 are left out: the contract does not say
        whether those were used."""
        if request.first.status not in (200, 402):
            return
        body = dict(request.body)
        if request.f == "purchase":
            others = [t for t in sorted(PRICES) if t != body["tokenAmount"]]
            body["tokenAmount"] = others[more % len(others)]
        else:
            body["tokenAmount"] = int(body["tokenAmount"]) + more
        answer = self._call(request.f, request.user, body)
        assert 400 <= answer.status < 500, (
            f"key {body['clientIdempotencyKey']!r}, first answered {request.first.status}, "
            f"reused with another body answered {answer}"
        )
        self._settle()

    @_keyed_rule(a_keyed_kind, unknown_creator=st.booleans())
    @logged_step
    def key_reused_after_refusal(
        self, f: str, fan: str, creator: str, amount: int, unknown_creator: bool
    ) -> Any:
        """A keyed request refused (400 for an amount the contract refuses, 404 for a
        creator nobody knows), sent again, then the same key with a valid body. The
        same body is refused the same way; the valid one is refused too (4xx, the
        key is spent) or done as a new request, and money moves at most once."""
        key = f"k{next(self.keys)}"
        user = self.uid(fan)
        if f == "purchase":
            good = purchase_body(sorted(PRICES)[amount % len(PRICES)], "pm_card_visa", key)
            bad, refused = {**good, "tokenAmount": 150}, 400  # not in the price table
        else:
            good = self._transfer_body(f, creator, amount, key)
            if unknown_creator:
                bad, refused = {**good, "creatorId": self.uid("nobody")}, 404
            else:
                bad, refused = {**good, "tokenAmount": "12abc"}, 400
        for attempt in ("first", "again"):
            answer = self._call(f, user, bad)
            assert answer.status == refused, f"{attempt}, {bad} answered {answer}"
        answer = self._call(f, user, good)
        if 400 <= answer.status < 500 and answer.status != 402:
            pass  # the key was spent by the refusal: nothing moves
        elif f == "purchase":
            assert answer.status == 200, f"a card purchase answered {answer}"
            self.model.balances[user] += good["tokenAmount"] + PRICES[good["tokenAmount"]]
            self._settle()
        else:
            self._expect_transfer(answer, fan, creator, amount)
        return Keyed(f, user, good, answer)

    @rule(request=keyed)
    @logged_step
    def retry(self, request: Keyed) -> None:
        answer = self._call(request.f, request.user, request.body)
        if request.first.status in (502, 503):
            # The first try met a Stripe outage, now over: this one charges, once.
            assert answer.status == 200, f"a purchase retried after an outage answered {answer}"
            self.model.balances[request.user] += request.body["tokenAmount"]
            request.first = answer
        else:
            assert answer.status == request.first.status, (
                f"a retry answered {answer.status}, the first answer was {request.first.status}"
            )
        self._settle()

    @rule(
        ops=st.lists(
            st.tuples(
                a_transfer,
                st.sampled_from(FANS + CREATORS),
                a_creator,
                a_transfer_amount,
            ).filter(lambda op: op[1] != op[2]),
            min_size=2,
            max_size=8,
        )
    )
    @logged_step
    def burst(self, ops: list[tuple[str, str, str, int]]) -> None:
        """k requests at once, gated (see _fire_gated): the outcome must equal some
        serial order's. Creators send too, so transfers can cross."""
        self._burst(ops)

    @rule(
        f=a_transfer,
        amounts=st.lists(a_transfer_amount, min_size=2, max_size=6).filter(
            lambda a: len(a) % 2 == 0
        ),
    )
    @logged_step
    def crossing_transfers(self, f: str, amounts: list[int]) -> None:
        """The two creators pay each other at the same moment, in pairs: each
        transfer locks both rows, in opposite request order. Catches lock orders
        that deadlock (more pairs, more chances for the locks to interleave)."""
        a, b = CREATORS
        self._burst([(f, *((a, b) if i % 2 == 0 else (b, a)), n) for i, n in enumerate(amounts)])

    def _burst(self, ops: list[tuple[str, str, str, int]]) -> None:
        before = len(self.history.ops)
        answers = self._fire_gated(
            [
                (f, self.uid(fan), self._transfer_body(f, creator, amount, None))
                for f, fan, creator, amount in ops
            ]
        )
        statuses = [a.status for a in answers]
        for order in itertools.permutations(range(len(ops))):
            balances = dict(self.model.balances)
            outcome = [0] * len(ops)
            for i in order:
                _, fan, creator, amount = ops[i]
                if balances[self.uid(fan)] >= amount:
                    balances[self.uid(fan)] -= amount
                    balances[self.uid(creator)] += amount
                    outcome[i] = 200
                else:
                    outcome[i] = 402
            if outcome == statuses:
                self.model.balances = balances
                return
        unanswered = [op.error for op in self.history.ops[before:] if op.error]
        raise AssertionError(
            f"no serial order of {ops} gives the answers {statuses}"
            + (f" (no answer: {unanswered})" if unanswered else "")
        )


def _intent_of(answer: Answer) -> object:
    body = answer.body if isinstance(answer.body, dict) else {}
    intent = body.get("paymentIntent")
    return intent.get("id") if isinstance(intent, dict) else None
