"""Checkers on hand-made histories and states: each invariant seen valid and broken."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from harness.checkers import Observation, check, ledger, responses, scoped, stripe
from harness.history import History, Op
from harness.state import (
    BalanceRow,
    DbState,
    Earning,
    Event,
    Intent,
    LedgerRow,
    StripeState,
    UserRow,
)

_ids = iter(range(1, 10_000))


def row(user: str, type_: str, tokens: int, status: str = "completed", **kw: Any) -> LedgerRow:
    fields: dict[str, Any] = {
        "stripe_payment_intent_id": None,
        "client_idempotency_key": None,
        "related_user_id": None,
        "amount_usd": None,
    }
    fields.update(kw)
    return LedgerRow(
        id=next(_ids), user_id=user, type=type_, tokens=tokens, status=status, **fields
    )


def tip_rows(fan: str, creator: str, n: int) -> list[LedgerRow]:
    return [
        row(fan, "tip", -n, related_user_id=creator),
        row(creator, "tip", n, related_user_id=fan),
    ]


def healthy_state() -> DbState:
    rows = [row("fan", "grant", 100), *tip_rows("fan", "cr", 10)]
    return DbState(
        users=(UserRow("fan", False, Decimal(0)), UserRow("cr", True, Decimal("0.50"))),
        balances=(BalanceRow("fan", 90, 0), BalanceRow("cr", 10, 10)),
        ledger=tuple(rows),
        earnings=(Earning("cr", "tip", "tip_1", 10, Decimal("0.50"), "fan"),),
    )


def intent(pi: str, status: str, user: str = "fan", key: str = "k", tokens: int = 100) -> Intent:
    return {
        "id": pi,
        "status": status,
        "amount": 99,
        "metadata": {
            "userId": user,
            "tokenAmount": str(tokens),
            "bonusTokens": "0",
            "clientIdempotencyKey": key,
        },
    }


NO_STRIPE = StripeState((), (), (), ())


def test_healthy_state_passes_every_checker() -> None:
    tip = {"creatorId": "cr", "tokenAmount": 10, "channel": "x"}
    results = check(Observation(_ops(("tip", "fan", tip, 200)), healthy_state(), NO_STRIPE))
    assert all(r.validity == "valid" for r in results), [r for r in results if not r.valid]


def test_negative_balance_is_flagged() -> None:
    db = healthy_state()
    db = DbState(db.users, (BalanceRow("fan", -5, 0),), db.ledger, db.earnings)
    result = ledger.non_negative(db)
    assert result.validity == "invalid"
    assert result.violations[0].evidence["balance_row"]["balance"] == -5


def test_lost_update_shows_as_unexplained_balance() -> None:
    db = healthy_state()
    # Two debits in the ledger, one in the balance: a lost update.
    db = DbState(db.users, db.balances, (*db.ledger, *tip_rows("fan", "cr", 10)), db.earnings)
    result = ledger.ledger_explains_balances(db)
    assert result.validity == "invalid"
    assert {v.evidence["user"] for v in result.violations} == {"fan", "cr"}


def test_transfer_defects_are_each_named() -> None:
    base = healthy_state()
    self_tip = DbState(
        base.users, base.balances, (*base.ledger, *tip_rows("cr", "cr", 1)), base.earnings
    )
    invariants = {v.invariant for v in ledger.transfers(self_tip).violations}
    assert "no-self-transfer" in invariants
    no_total = DbState(
        base.users, (BalanceRow("fan", 90, 0), BalanceRow("cr", 10, 0)), base.ledger, base.earnings
    )
    assert {v.invariant for v in ledger.transfers(no_total).violations} == {"total-earned"}
    dup_source = DbState(
        base.users,
        base.balances,
        base.ledger,
        (*base.earnings, Earning("cr", "tip", "tip_1", 1, Decimal("0.05"), "fan")),
    )
    assert "unique-earning-source" in {v.invariant for v in ledger.transfers(dup_source).violations}
    usd = DbState((UserRow("cr", True, Decimal(0)),), base.balances, base.ledger, base.earnings)
    assert "total-earnings-usd" in {v.invariant for v in ledger.transfers(usd).violations}
    one_sided = DbState(
        base.users, base.balances, (*base.ledger, row("fan", "tip", -3)), base.earnings
    )
    assert "debit-equals-credit" in {v.invariant for v in ledger.transfers(one_sided).violations}


def test_reconciliation() -> None:
    credited = row("fan", "purchase", 100, stripe_payment_intent_id="pi_1")
    db = DbState((), (), (credited,), ())
    ok = StripeState((intent("pi_1", "succeeded"),), (), (), ())
    assert stripe.reconciliation(db, ok).validity == "valid"
    twice = DbState(
        (), (), (credited, row("fan", "purchase", 100, stripe_payment_intent_id="pi_1")), ()
    )
    assert stripe.reconciliation(twice, ok).violations[0].invariant == "credited-exactly-once"
    lost = DbState((), (), (), ())
    assert stripe.reconciliation(lost, ok).violations[0].invariant == "credited-exactly-once"
    failed = StripeState((intent("pi_1", "requires_payment_method"),), (), (), ())
    assert stripe.reconciliation(db, failed).violations[0].invariant == "no-credit-without-charge"
    assert (
        stripe.reconciliation(db, NO_STRIPE).violations[0].invariant == "no-credit-without-charge"
    )
    short = DbState((), (), (row("fan", "purchase", 50, stripe_payment_intent_id="pi_1"),), ())
    assert stripe.reconciliation(short, ok).violations[0].invariant == "credited-amount"


def test_one_charge_per_key() -> None:
    once = StripeState(
        (intent("pi_1", "succeeded"), intent("pi_2", "requires_payment_method")), (), (), ()
    )
    assert stripe.one_charge_per_key([], once).validity == "valid"
    twice = StripeState((intent("pi_1", "succeeded"), intent("pi_2", "succeeded")), (), (), ())
    result = stripe.one_charge_per_key([], twice)
    assert result.violations[0].evidence["intents"] == ["pi_1", "pi_2"]


def _bare(pi: str, status: str) -> Intent:
    """An intent whose metadata carries no client key (the service left it out)."""
    bare = intent(pi, status)
    bare["metadata"] = {"userId": "fan", "tokenAmount": "100"}
    return bare


def test_charges_are_counted_against_the_keys_the_harness_sent() -> None:
    key = {"tokenAmount": 100, "paymentMethodId": "pm_card_visa", "clientIdempotencyKey": "k1"}
    retried = _ops(("purchase", "fan", key, 200), ("purchase", "fan", key, 200))
    two = StripeState((_bare("pi_1", "succeeded"), _bare("pi_2", "succeeded")), (), (), ())
    [violation] = stripe.one_charge_per_key(retried, two).violations
    assert violation.invariant == "one-charge-per-key"
    assert "'k1'" in violation.message
    one = StripeState((_bare("pi_1", "succeeded"), _bare("pi_2", "canceled")), (), (), ())
    assert stripe.one_charge_per_key(retried, one).validity == "valid"
    unkeyed = {"tokenAmount": 100, "paymentMethodId": "pm_card_visa"}
    two_buys = _ops(("purchase", "fan", unkeyed, 200), ("purchase", "fan", unkeyed, 200))
    assert stripe.one_charge_per_key(two_buys, two).validity == "valid"
    refused = _ops(("purchase", "fan", key, 200), ("purchase", "fan", unkeyed, 400))
    assert stripe.one_charge_per_key(refused, two).violations


def test_failed_and_canceled_intents_leave_their_rows_so_marked() -> None:
    def ended(pi: str, kind: str) -> Event:
        return {"id": f"evt_{pi}", "type": kind, "data": {"object": {"id": pi}}}

    canceled = StripeState(
        (intent("pi_1", "canceled"), intent("pi_2", "requires_payment_method")),
        (ended("pi_1", "payment_intent.canceled"), ended("pi_2", "payment_intent.payment_failed")),
        (),
        (),
    )
    stuck = DbState(
        (),
        (),
        (
            row("fan", "purchase", 100, "requires_action", stripe_payment_intent_id="pi_1"),
            row("fan", "purchase", 100, "failed", stripe_payment_intent_id="pi_2"),
        ),
        (),
    )
    [violation] = stripe.purchase_rows_settled(stuck, canceled).violations
    assert violation.invariant == "purchase-row-final-status"
    assert violation.evidence["row_status"] == "requires_action"
    settled = DbState(
        (),
        (),
        (
            row("fan", "purchase", 100, "canceled", stripe_payment_intent_id="pi_1"),
            row("fan", "purchase", 100, "failed", stripe_payment_intent_id="pi_2"),
        ),
        (),
    )
    assert stripe.purchase_rows_settled(settled, canceled).validity == "valid"


def _ops(*calls: tuple[str, str, dict[str, Any], int | None]) -> list[Op]:
    history = History()
    for f, user, args, status in calls:
        history.complete(history.invoke("w0", f, user, args), status)
    return history.ops


def test_answers_must_match_the_ledger() -> None:
    db = healthy_state()  # fan tipped 10 once
    tip = {"creatorId": "cr", "tokenAmount": 10, "channel": "x"}
    assert responses.transfers_match_answers(_ops(("tip", "fan", tip, 200)), db).valid
    # A 200 that moved nothing, and a 402 that moved tokens, are both flagged.
    two_ok = _ops(("tip", "fan", tip, 200), ("tip", "fan", tip, 200))
    assert not responses.transfers_match_answers(two_ok, db).valid
    refused = _ops(("tip", "fan", tip, 402))
    assert not responses.transfers_match_answers(refused, db).valid
    # An unknown outcome may or may not have happened: both fine.
    unknown = _ops(("tip", "fan", tip, 200), ("tip", "fan", tip, None))
    assert responses.transfers_match_answers(unknown, db).valid
    # A retried key counts once.
    keyed = {**tip, "clientIdempotencyKey": "k"}
    assert responses.transfers_match_answers(
        _ops(("tip", "fan", keyed, 200), ("tip", "fan", keyed, 200)), db
    ).valid


def test_server_errors_are_flagged() -> None:
    result = responses.no_server_errors(_ops(("tip", "fan", {}, 500), ("tip", "fan", {}, 402)))
    assert [v.evidence["op"]["status"] for v in result.violations] == [500]


def test_purchase_answers() -> None:
    st = StripeState((intent("pi_1", "succeeded"),), (), (), ())
    history = History()
    history.complete(
        history.invoke("w", "purchase", "fan", {}), 200, {"paymentIntent": {"id": "pi_9"}}
    )
    history.complete(history.invoke("w", "purchase", "fan", {}), 402, {"paymentIntentId": "pi_1"})
    invariants = [
        v.invariant for v in responses.purchases_match_answers(history.ops, st).violations
    ]
    assert invariants == ["purchase-answer-real", "decline-charged-nothing"]


def test_scoping_keeps_only_the_scenarios_users() -> None:
    db = healthy_state()
    st = StripeState((intent("pi_1", "succeeded", user="other"),), (), (), ())
    only_fan, st2 = scoped(db, st, frozenset({"fan"}))
    assert {b.user_id for b in only_fan.balances} == {"fan"}
    assert st2.intents == ()


def test_internal_text_in_error_answers_is_flagged() -> None:
    history = History()
    history.complete(
        history.invoke("w", "tip", "fan", {}),
        500,
        {"error": "x", "details": "duplicate key value violates unique constraint"},
    )
    history.complete(history.invoke("w", "tip", "fan", {}), 402, {"error": "Insufficient"})
    result = responses.no_internal_text(history.ops)
    assert [v.evidence["op"]["status"] for v in result.violations] == [500]


@pytest.mark.parametrize(
    "text",
    [
        'invalid byte sequence for encoding "UTF8": 0x00',  # PostgreSQL, in any driver's words
        "An unknown error occurred",  # Stripe's api_error, passed through
    ],
)
def test_database_and_stripe_messages_in_a_5xx_are_internal_text(text: str) -> None:
    history = History()
    history.complete(history.invoke("w", "tip", "fan", {}), 500, {"message": text})
    assert responses.no_internal_text(history.ops).violations


def test_a_lost_credit_says_where_to_look() -> None:
    ok = StripeState(
        (intent("pi_1", "succeeded"),),
        ({"id": "evt_1", "type": "payment_intent.succeeded", "data": {"object": {"id": "pi_1"}}},),
        (
            {
                "event_id": "evt_1",
                "event_type": "payment_intent.succeeded",
                "attempt": 1,
                "signature": "valid",
                "started": 100.0,
                "status": 200,
            },
        ),
        (),
    )
    pending = row("fan", "purchase", 100, "pending", stripe_payment_intent_id="pi_1")
    late = DbState((), (), (LedgerRow(**{**pending.__dict__, "created_at": 100.5}),), ())
    [violation] = stripe.reconciliation(late, ok).violations
    assert "answered 1 genuine succeeded deliveries with 2xx" in violation.message
    assert "before the row existed" in violation.message
    assert violation.evidence["deliveries"][0]["when"] == "0.500 s before the row was created"
    [missing] = stripe.reconciliation(DbState((), (), (), ()), ok).violations
    assert "acknowledged and dropped" in missing.message


def test_a_credit_whose_row_was_overwritten_is_not_called_uncredited() -> None:
    """The row's status is not the credit: the balance shows the tokens landed."""
    db = DbState(
        (UserRow("fan", False, Decimal(0)),),
        (BalanceRow("fan", 100, 0),),
        (row("fan", "purchase", 100, "failed", stripe_payment_intent_id="pi_1"),),
        (),
    )
    stripe_state = StripeState((intent("pi_1", "succeeded"),), (), (), ())
    [violation] = stripe.reconciliation(db, stripe_state).violations
    assert "credited 0 times" not in violation.message
    assert "has no completed purchase row" in violation.message
    assert "balance is 100 tokens above" in violation.message


def test_what_the_database_server_logged_is_internal_text(tmp_path: Path) -> None:
    """A message in no catalogue, but logged by the run's PostgreSQL server: a 5xx
    that carries it leaks, whatever words the service wraps it in."""
    from harness.run.collect import logged_errors

    log = tmp_path / "server.log"
    log.write_text(
        "2026-12-07 10:00:00.123 UTC [77] ERROR:  value too long for type character varying(200)\n"
        "2026-12-07 10:00:00.124 UTC [77] STATEMENT:  INSERT INTO t VALUES ($1)\n"
        "2026-12-07 10:00:00.125 UTC [77] LOG:  checkpoint starting: time\n"
    )
    logged = logged_errors(log)
    assert logged == (
        "value too long for type character varying(200)",
        "INSERT INTO t VALUES ($1)",  # the SQL too
    )
    history = History()
    body = {"error": "oops: value too long for type character varying(200)"}
    history.complete(history.invoke("w", "tip", "fan", {}), 500, body)
    assert not responses.no_internal_text(history.ops).violations  # not in the catalogue
    assert responses.no_internal_text(history.ops, logged).violations
