"""inputs: Hypothesis-generated bad bodies for every endpoint: 4xx, never 5xx,
nothing changes."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.runner import Run
from harness.scenario import creator, fan, scenario

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
bad_text = st.one_of(
    st.just(""),
    st.just("   "),
    st.integers(),
    st.none(),
    st.booleans(),
    st.text(min_size=201, max_size=260),
    st.lists(st.text(max_size=3), max_size=2),
)
extra = st.dictionaries(
    st.sampled_from(["senderId", "userId", "balance", "__proto__", "x"]),
    st.integers() | st.text(max_size=5),
    max_size=2,
)


def _bodies(valid: dict[str, Any], fields: dict[str, st.SearchStrategy[Any]]) -> list[Any]:
    """Bodies with at least one bad or missing field (plus noise), and non-objects."""
    collected: list[Any] = []

    @st.composite
    def broken(draw: st.DrawFn) -> Any:
        shape = draw(st.sampled_from(["field", "missing", "not-object"]))
        if shape == "not-object":
            return draw(
                st.one_of(
                    st.lists(st.integers(), max_size=3),
                    st.integers(),
                    st.text(max_size=5),
                    st.none(),
                )
            )
        body = dict(valid)
        target = draw(st.sampled_from(sorted(fields)))
        if shape == "missing":
            del body[target]
        else:
            body[target] = draw(fields[target])
        body.update(draw(extra))
        return body

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(broken())
    def collect(body: Any) -> None:
        collected.append(body)

    collect()
    return collected


async def _probe(run: Run, f: str, path: str, user: str, bodies: list[Any]) -> None:
    before = await run.db()
    for body in bodies:
        answer = await run.call(
            f,
            "POST",
            path,
            user=user,
            json=body if body is not None else None,
            content=b"null" if body is None else None,
            headers={"Content-Type": "application/json"},
            args={"body": body},
        )
        run.expect(
            400 <= answer.status < 500,
            "bad-input-refused",
            f"{path} answered {answer.status} to {json.dumps(body, default=str)[:120]}",
            body=body,
            status=answer.status,
        )
    after = await run.db()
    run.expect(after == before, "bad-input-changes-nothing", f"bad bodies to {path} changed state")
    intents = [
        i
        for i in run.stripe.state()["intents"]
        if (i.get("metadata") or {}).get("userId") == run.user("fan")
    ]
    run.expect(not intents, "bad-input-charges-nothing", f"{len(intents)} intents created")


@scenario("inputs", users=[fan("fan", 100), creator("star")], timeout_s=120)
async def tip_bodies(run: Run) -> None:
    """Bad tip bodies (amount types, signs, zero, huge, exponents, padding, unicode
    digits, missing and extra fields, non-objects). Catches lenient-amounts."""
    valid = {"creatorId": run.user("star"), "tokenAmount": 5, "channel": "live"}
    bodies = _bodies(
        valid, {"tokenAmount": bad_amounts, "creatorId": bad_text, "channel": bad_text}
    )
    await _probe(run, "tip", "/api/tokens/tip", "fan", bodies)


@scenario("inputs", users=[fan("fan", 100), creator("star")], timeout_s=120)
async def deduct_bodies(run: Run) -> None:
    """Bad call-minute bodies. Catches negative-deduct and lenient-amounts."""
    valid = {"creatorId": run.user("star"), "tokenAmount": 5, "callId": "call-1"}
    bodies = _bodies(valid, {"tokenAmount": bad_amounts, "creatorId": bad_text, "callId": bad_text})
    await _probe(run, "deduct", "/api/tokens/calls/deduct", "fan", bodies)


@scenario("inputs", users=[fan("fan", 100)], timeout_s=120)
async def purchase_bodies(run: Run) -> None:
    """Bad purchase bodies, and amounts outside the price table: nothing charged."""
    valid = {"tokenAmount": 100, "paymentMethodId": "pm_card_visa"}
    amounts = st.one_of(bad_amounts, st.sampled_from([1, 99, 150, 101, 9999, 20000]))
    bodies = _bodies(valid, {"tokenAmount": amounts, "paymentMethodId": bad_text})
    await _probe(run, "purchase", "/api/tokens/purchase", "fan", bodies)


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
    for path, f in (
        ("/api/tokens/tip", "tip"),
        ("/api/tokens/calls/deduct", "deduct"),
        ("/api/tokens/purchase", "purchase"),
    ):
        for payload in payloads:
            answer = await run.call(
                f,
                "POST",
                path,
                user="fan",
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
