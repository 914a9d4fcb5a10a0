"""security: tokens that must be refused, spending someone else's tokens, paying
oneself, negative amounts, and error answers that leak internals."""

from __future__ import annotations

import base64
import json
import time

from harness.api import Run, transfer_body
from harness.checkers import ALLOW_5XX
from harness.run.scenario import creator, fan, scenario, stranger


def _unsigned(claims: dict[str, object]) -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


@scenario("security", users=[fan("fan", 100), creator("star")])
async def refused_tokens(run: Run) -> None:
    """Missing, expired, exp-less, wrongly signed, alg:none and garbage tokens: 401 on
    every route and nothing changes. Catches jwt-no-exp."""
    sub, now = run.user("fan"), int(time.time())
    auth = run.target.dialect.auth
    tokens = {
        "expired": run.token("fan", ttl_s=-60),
        "no-exp": run.token("fan", ttl_s=None),
        "wrong-key": run.token("fan", key="not-the-secret-but-long-enough-0123456789"),
        "alg-none": _unsigned({auth.user_claim: sub, **auth.claims, "exp": now + 600}),
        "garbage": "not.a.token",
    }
    before = await run.db()
    tip = {"creatorId": run.user("star"), "tokenAmount": 5, "channel": "x"}
    accepted: list[str] = []
    for name, token in [*tokens.items(), ("missing", None)]:
        for f, body in (
            ("tip", tip),
            ("deduct", {"creatorId": tip["creatorId"], "tokenAmount": 5, "callId": "c"}),
            ("balance", None),
        ):
            wire = run.wire(f, body)
            path = f"{wire.method} {wire.path}"
            answer = await run.send(
                f, None, body, token=token, args={"token": name, **(body or {})}
            )
            if not run.expect(
                answer.status == 401,
                "exp-required" if name == "no-exp" else "bad-token-refused",
                f"{path} with a {name} token answered {answer.status}",
            ):
                accepted.append(f"{path} with a {name} token ({answer.status})")
    after = await run.db()
    # Said from what the answers show: a call the service accepted, or one it
    # refused (401) that moved tokens all the same.
    run.expect(
        after == before,
        "bad-token-changes-nothing",
        f"tokens moved after calls with bad tokens; the service accepted {', '.join(accepted)}"
        if accepted
        else "tokens moved though every call with a bad token was answered 401",
        balances_before={b.user_id: b.balance for b in before.balances},
        balances_after={b.user_id: b.balance for b in after.balances},
    )


@scenario("security", users=[fan("thief", 0), fan("victim", 100), creator("star")])
async def spending_someone_elses_tokens(run: Run) -> None:
    """The caller names another user in the body (senderId, userId, fanId): only the
    caller's tokens may move, so the victim's balance stays 100."""
    for field in ("senderId", "userId", "fanId", "supabase_id"):
        # The field beside the service's own body (in its dialect), as a client would.
        body = transfer_body("tip", run.user("star"), 10, context="x")
        wire = run.wire("tip", body)
        await run.call(
            "tip",
            wire.method,
            wire.path,
            user="thief",
            json={**wire.json, field: run.user("victim")},
            headers=wire.headers,
            args={**body, field: run.user("victim")},
            route="tip",
        )
    db = await run.db()
    run.expect(
        db.balance_of(run.user("victim")) == 100,
        "only-callers-tokens-move",
        f"the victim's balance is {db.balance_of(run.user('victim'))}",
    )


@scenario("security", users=[creator("star", 100), fan("fan", 100)])
async def paying_oneself(run: Run) -> None:
    """A creator tips and calls themself: refused (4xx), nothing moves. Catches
    self-tip."""
    tip = await run.tip("star", "star", 10)
    call = await run.deduct("star", "star", 10)
    for name, answer in (("tip", tip), ("call", call)):
        run.expect(
            400 <= answer.status < 500,
            "self-transfer-refused",
            f"a self {name} answered {answer.status}",
        )


@scenario("security", users=[fan("fan", 100), creator("star", 100)])
async def negative_amounts(run: Run) -> None:
    """Negative and zero amounts would move tokens backwards: refused, nothing moves."""
    for amount in (-50, "-50", 0, -1):
        for answer in (
            await run.tip("fan", "star", amount),
            await run.deduct("fan", "star", amount),
        ):
            run.expect(
                400 <= answer.status < 500,
                "negative-refused",
                f"amount {amount!r} answered {answer.status}",
            )
    db = await run.db()
    run.expect(
        db.balance_of(run.user("fan")) == 100,
        "negative-refused",
        f"the fan's balance is {db.balance_of(run.user('fan'))}",
    )


@scenario("security", users=[fan("fan", 100)], checkers=ALLOW_5XX)
async def error_answers_leak_nothing(run: Run) -> None:
    """Stripe fails (500, then a dropped connection) and bad input arrives: the error
    answers carry no SQL, driver, Stripe text or stack trace. Catches leaky-errors."""
    run.stripe.add_fault("error", status=500, times=10)
    await run.purchase("fan", 100)
    run.stripe.clear_faults()
    await run.purchase("fan", 100, method="pm_card_nonexistent")
    await run.send("tip", "fan", {"creatorId": "x" * 150, "tokenAmount": 5, "channel": "c"})


@scenario("security", users=[stranger("stranger"), creator("star")])
async def unknown_user_buys_and_tips(run: Run) -> None:
    """A validly signed token for a user the service does not know buys tokens and
    tips: 404, and no card is charged (a charge for nobody is taken and never
    credited). Catches services that charge before they look the user up."""
    bought = await run.purchase("stranger", 100)
    run.expect(
        bought.status == 404,
        "unknown-user-refused",
        f"a purchase by an unknown user answered {bought.status}",
    )
    tipped = await run.tip("stranger", "star", 5)
    run.expect(
        400 <= tipped.status < 500,
        "unknown-user-refused",
        f"a tip by an unknown user answered {tipped.status}",
    )
    charged = [i["id"] for i in await run.intents_of("stranger") if i["status"] == "succeeded"]
    run.expect(
        not charged,
        "unknown-user-refused",
        f"the unknown user's card was charged: {charged}",
        intents=charged,
    )
