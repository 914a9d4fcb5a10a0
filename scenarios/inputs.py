"""inputs: Hypothesis-generated bad bodies for every endpoint: 4xx, never 5xx,
nothing changes."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from harness.api import Run
from harness.contract import BAD_AMOUNT_LITERALS, PRICE_TABLE
from harness.run.scenario import creator, fan, scenario

EXAMPLES = 60

bad_amounts = st.one_of(
    st.sampled_from(
        [
            "12abc",
            "1e3",
            "1.5",
            " 5",
            "5 ",
            "0100",
            "",
            "-5",
            "+5",
            "0x10",
            "\uff15",
            "5\u0000",
            "١٢",
            "Infinity",
            "NaN",
            "0",
        ]
    ),
    st.integers(max_value=0),
    st.integers(min_value=10**9 + 1, max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer()),
    st.booleans(),
    st.none(),
    st.lists(st.integers(1, 10), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.text(max_size=12).filter(lambda s: not (s.isascii() and s.isdigit() and s[:1] != "0")),
)
# Not a non-empty string of at most 200 characters (the contract's `creatorId`
# and `channel`); "   " is a non-empty string, so it is not here.
bad_text = st.one_of(
    st.just(""),
    st.integers(),
    st.none(),
    st.booleans(),
    st.text(min_size=201, max_size=260),
    st.lists(st.text(max_size=3), max_size=2),
)
not_an_object = st.one_of(
    st.lists(st.integers(), max_size=3), st.integers(), st.text(max_size=5), st.none()
)
extra = st.dictionaries(
    st.sampled_from(["senderId", "userId", "balance", "__proto__", "x"]),
    st.integers() | st.text(max_size=5),
    max_size=2,
)
INVARIANT_OF_FIELD = {
    "tokenAmount": "bad-input-refused",
    "creatorId": "bad-text-field-refused",
    "channel": "bad-text-field-refused",
}


def _literal_bodies(valid: dict[str, Any]) -> list[tuple[Any, str]]:
    """Every bad `tokenAmount` the contract lists, before anything generated:
    these are the literals a lenient parser accepts."""
    return [
        ({**valid, "tokenAmount": literal}, "bad-input-refused") for literal in BAD_AMOUNT_LITERALS
    ]


def _generated_bodies(
    valid: dict[str, Any], fields: dict[str, st.SearchStrategy[Any]], seed: int
) -> list[tuple[Any, str]]:
    """EXAMPLES bodies drawn from `--seed`, each with one field the contract
    constrains made bad or left out (plus noise), or not an object at all. Fields
    the contract leaves open (`callId`, `paymentMethodId`) are never judged."""
    collected: list[tuple[Any, str]] = []

    @st.composite
    def broken(draw: st.DrawFn) -> tuple[Any, str]:
        shape = draw(st.sampled_from(["field", "missing", "not-object"]))
        if shape == "not-object":
            return draw(not_an_object), "bad-text-field-refused"
        body = dict(valid)
        target = draw(st.sampled_from(sorted(fields)))
        if shape == "missing":
            del body[target]
        else:
            body[target] = draw(fields[target])
        body.update(draw(extra))
        return body, INVARIANT_OF_FIELD[target]

    @hypothesis_seed(seed)
    @settings(max_examples=EXAMPLES, database=None, suppress_health_check=list(HealthCheck))
    @given(broken())
    def collect(item: tuple[Any, str]) -> None:
        collected.append(item)

    collect()
    return collected


async def _probe(run: Run, f: str, user: str, bodies: list[tuple[Any, str]]) -> None:
    """Each body to route `f`, in the target's dialect (a bad amount reaches the
    service's own amount field, type and all)."""
    before = await run.db()
    path = run.wire(f).path
    for body, invariant in bodies:
        answer = await run.send(
            f,
            user,
            body,
            content=b"null" if body is None else None,
            headers={"Content-Type": "application/json"},
            args={"body": body},
        )
        run.expect(
            400 <= answer.status < 500,
            invariant,
            f"{path} answered {answer.status} to {json.dumps(body, default=str)[:120]}",
            body=body,
            status=answer.status,
        )
    after = await run.db()
    run.expect(after == before, "bad-input-changes-nothing", f"bad bodies to {path} changed state")
    intents = await run.intents_of("fan")
    run.expect(not intents, "bad-input-charges-nothing", f"{len(intents)} intents created")


@scenario("inputs", users=[fan("fan", 100), creator("star")], timeout_s=120)
async def tip_bodies(run: Run) -> None:
    """Every bad amount the contract lists, then generated bad tip bodies (amount
    types, signs, zero, huge, exponents, padding, unicode digits, missing and extra
    fields, bad creatorId/channel, non-objects). Catches lenient-amounts."""
    valid = {"creatorId": run.user("star"), "tokenAmount": 5, "channel": "live"}
    fields = {"tokenAmount": bad_amounts, "creatorId": bad_text, "channel": bad_text}
    bodies = _literal_bodies(valid) + _generated_bodies(valid, fields, run.seed)
    await _probe(run, "tip", "fan", bodies)


@scenario("inputs", users=[fan("fan", 100), creator("star")], timeout_s=120)
async def deduct_bodies(run: Run) -> None:
    """Every bad amount the contract lists, then generated bad call-minute bodies
    (`callId` is left as it is: the contract does not constrain it). Catches
    negative-deduct and lenient-amounts."""
    valid = {"creatorId": run.user("star"), "tokenAmount": 5, "callId": "call-1"}
    fields = {"tokenAmount": bad_amounts, "creatorId": bad_text}
    bodies = _literal_bodies(valid) + _generated_bodies(valid, fields, run.seed)
    await _probe(run, "deduct", "fan", bodies)


@scenario("inputs", users=[fan("fan", 100)], timeout_s=120)
async def purchase_bodies(run: Run) -> None:
    """Every bad amount the contract lists, whole numbers outside the price table,
    then generated bad purchase bodies: 4xx and nothing charged (`paymentMethodId`
    is left valid: the contract does not say what a bad one gets)."""
    valid = {"tokenAmount": 100, "paymentMethodId": "pm_card_visa"}
    outside = [
        ({**valid, "tokenAmount": n}, "outside-price-table-refused")
        for n in (1, 99, 101, 150, 999, 9999, 20000, 10**9)
        if n not in PRICE_TABLE
    ]
    generated = _generated_bodies(valid, {"tokenAmount": bad_amounts}, run.seed)
    bodies = _literal_bodies(valid) + outside + generated
    await _probe(run, "purchase", "fan", bodies)


@scenario("inputs", users=[fan("fan", 100), creator("star")])
async def raw_bodies(run: Run) -> None:
    """Not JSON, truncated JSON, a 200 KB body, wrong content types: 4xx, no change."""
    before = await run.db()
    payloads = [
        b"",
        b"{",
        b"tokenAmount=5",
        b"\xff\xfe",
        b'{"tokenAmount": 5,}',
        b'{"creatorId": "' + b"x" * 200_000 + b'"}',
    ]
    for f in ("tip", "deduct", "purchase"):
        path = run.wire(f).path
        for payload in payloads:
            answer = await run.send(
                f,
                "fan",
                content=payload,
                headers={"Content-Type": "application/json"},
                args={"raw": payload[:60].decode(errors="replace")},
            )
            run.expect(
                400 <= answer.status < 500,
                "bad-input-refused",
                f"{path} answered {answer.status} to {payload[:40]!r}",
            )
    run.expect(await run.db() == before, "bad-input-changes-nothing", "raw bodies changed state")
