"""Dialects: the file read with every key checked, and the contract's requests and
answers translated both ways (pure; `dialect check` against a service is in
tests/integration/test_dialect_check.py)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import jwt
import pytest

from harness.contract import purchase_body, transfer_body
from harness.dialect import CONTRACT, Dialect, DialectError, load_dialect, parse_dialect
from harness.dialect.model import ANSWER_FIELDS, CONTRACT_SQL, OUTCOMES
from harness.dialect.wire import (
    MISSING_PATH_VALUE,
    auth_header,
    contract_answer,
    sign_token,
    wire_request,
)
from harness.target.dialect_check import DialectReport, PartResult

pytestmark = pytest.mark.unit

CREDITS = """
name = "credits-api"

[routes]
purchase = "POST /v1/credits/checkout"
tip = "POST /v1/tips"
deduct = "POST /v1/calls/{callId}/minutes"
balance = "GET /v1/wallet"
webhook = "POST /hooks/stripe"
health = "GET /healthz"

[requests.purchase]
body = { credits = "{tokenAmount}", payment_method = "{paymentMethodId}" }
idempotency-key = "header Idempotency-Key"

[requests.tip]
body = { recipient = "{creatorId}", amount = "{tokenAmount}", context = { channel = "{channel}" } }
idempotency-key = "header Idempotency-Key"

[requests.deduct]
body = { creator = "{creatorId}", credits = "{tokenAmount}", note = "call {callId}" }
idempotency-key = "body meta.key"

[answers.purchase]
"paymentIntent.id" = "checkout.payment_intent"
"paymentIntent.status" = "checkout.status"

[answers.tip]
tokensDeducted = "transfer.amount"
senderBalance = "balances.sender"
recipientBalance = "balances.recipient"

[answers.balance]
balance = "wallet.available"

[statuses]
ok = [200, 201]
insufficient-funds = 422

[auth]
header = "X-Api-Token"
scheme = ""
user-claim = "uid"
claims = { aud = "credits-api" }

[metadata]
userId = "account_id"
"""


@pytest.fixture
def credits(tmp_path: Path) -> Dialect:
    path = tmp_path / "tokenproof-dialect.toml"
    path.write_text(CREDITS)
    return load_dialect(path)


def test_the_contract_is_the_dialect_that_changes_nothing() -> None:
    body = transfer_body("tip", "star", 5, context="live", key="k1")
    wire = wire_request(CONTRACT, "tip", body)
    assert (wire.method, wire.path, wire.json, wire.headers) == (
        "POST",
        "/api/tokens/tip",
        body,
        {},
    )
    answer = {"tokensDeducted": 5, "senderBalance": 1}
    assert contract_answer(CONTRACT, "tip", 402, answer) == (402, answer)
    assert auth_header(CONTRACT, "t") == ("Authorization", "Bearer t")
    assert CONTRACT.sql("ledger") is None  # the contract's tables, read as always


def test_requests_go_out_in_the_services_words(credits: Dialect) -> None:
    wire = wire_request(credits, "tip", transfer_body("tip", "star", "12abc", context="x", key="k"))
    assert wire.path == "/v1/tips"
    # A malformed amount reaches the service's own field, type and all.
    assert wire.json == {"recipient": "star", "amount": "12abc", "context": {"channel": "x"}}
    assert wire.headers == {"Idempotency-Key": "k"}
    deduct = wire_request(
        credits, "deduct", transfer_body("deduct", "star", 1.5, context="call/1", key="k2")
    )
    assert deduct.path == "/v1/calls/call%2F1/minutes"
    assert deduct.json == {
        "creator": "star",
        "credits": 1.5,
        "note": "call call/1",
        "meta": {"key": "k2"},
    }
    buy = wire_request(credits, "purchase", purchase_body(True, "pm_card_visa"))
    assert buy.json == {"credits": True, "payment_method": "pm_card_visa"} and not buy.headers


def test_a_field_the_request_lacks_is_left_out_and_bad_bodies_pass_through(
    credits: Dialect,
) -> None:
    wire = wire_request(credits, "tip", {"tokenAmount": 5})
    assert wire.json == {"amount": 5, "context": {}}
    deduct = wire_request(credits, "deduct", {"creatorId": "s", "tokenAmount": 1})
    assert deduct.path == f"/v1/calls/{MISSING_PATH_VALUE}/minutes"
    assert "note" not in deduct.json  # its template names a field the body lacks
    for body in ([1, 2], "text", 7):
        assert wire_request(credits, "tip", body).json == body


def test_answers_come_back_in_the_contracts_words(credits: Dialect) -> None:
    said = {"transfer": {"id": 9, "amount": 5}, "balances": {"sender": 1, "recipient": 7}}
    status, body = contract_answer(credits, "tip", 200, said)
    assert status == 200
    assert (body["tokensDeducted"], body["senderBalance"], body["recipientBalance"]) == (5, 1, 7)
    assert body["transfer"] == said["transfer"]  # the service's own words stay
    assert contract_answer(credits, "tip", 422, {"error": {}})[0] == 402
    status, bought = contract_answer(
        credits, "purchase", 201, {"checkout": {"payment_intent": "pi_1", "status": "ok"}}
    )
    assert status == 200 and bought["paymentIntent"] == {"id": "pi_1", "status": "ok"}
    # 422 means insufficient funds on transfers only: on a purchase it stays 422.
    assert contract_answer(credits, "purchase", 422, {})[0] == 422
    assert contract_answer(credits, "balance", 200, {"wallet": {"available": 3}})[1]["balance"] == 3
    assert contract_answer(credits, "tip", 500, "Internal")[1] == "Internal"
    # A key of the contract's name is not the mapped field: missing there, it is missing.
    assert "balance" not in contract_answer(credits, "balance", 200, {"balance": 5})[1]


def test_tokens_are_signed_as_the_service_reads_them(credits: Dialect) -> None:
    secret = "s" * 32
    token = sign_token(credits, "fan-1", secret)
    claims = jwt.decode(token, secret, algorithms=["HS256"], audience="credits-api")
    assert claims["uid"] == "fan-1" and "exp" in claims and "sub" not in claims
    no_exp = jwt.decode(
        sign_token(credits, "fan-1", secret, ttl_s=None),
        secret,
        algorithms=["HS256"],
        audience="credits-api",
        options={"require": []},
    )
    assert "exp" not in no_exp
    assert auth_header(credits, "tok") == ("X-Api-Token", "tok")


def test_a_dialect_travels_to_a_worker_as_plain_data(credits: Dialect) -> None:
    again = Dialect.from_json(json.loads(json.dumps(credits.to_json())))
    assert again == credits
    assert "routes.tip" in credits.mapped and "routes.tip" in again.mapped


def test_tables_under_dialect_in_a_configuration_file_are_read_the_same(
    tmp_path: Path, credits: Dialect
) -> None:
    path = tmp_path / "tokenproof.toml"
    path.write_text(
        CREDITS.replace('name = "credits-api"', '[dialect]\nname = "credits-api"')
        .replace("\n[", "\n[dialect.")
        .replace("[dialect.dialect]", "[dialect]")
    )
    inline = load_dialect(path)
    assert (inline.routes, inline.requests, inline.answers, inline.auth, inline.mapped) == (
        credits.routes,
        credits.requests,
        credits.answers,
        credits.auth,
        credits.mapped,
    )


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('[routes]\ntipp = "POST /x"', "unknown key routes.tipp"),
        ('[routes]\ntip = "/v1/tips"', 'routes.tip must be "METHOD /path"'),
        ('[routes]\ntip = "POST /v1/{userId}/tips"', "names {userId}"),
        ('[routes]\nbalance = "GET /v1/{creatorId}"', "path parameter"),
        ('[requests.tip]\nbody = { x = "{tokens}" }', "uses {tokens}"),
        ('[requests.tip]\nidempotency-key = "query key"', 'must be "header <Name>"'),
        ("[statuses]\ninsufficient-funds = 400", "stands for both bad-input and insufficient"),
        ('[statuses]\nok = "200"', "statuses.ok must be a status code"),
        ('[auth]\nalgorithm = "RS256"', "auth.algorithm must be one of"),
        ("[auth]\nclaims = { exp = 1 }", "cannot set exp"),
        ('[answers.tip]\nbalance = "wallet"', "unknown key answers.tip.balance"),
        ('[database]\nledgers = "SELECT 1"', "unknown key database.ledgers"),
        ('[metadata]\nuser = "id"', "unknown key metadata.user"),
        ("routes = 5", "routes must be a table"),
    ],
)
def test_a_mistake_is_named_with_what_to_write(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "d.toml"
    path.write_text(text)
    with pytest.raises(DialectError, match=None) as raised:
        load_dialect(path)
    assert says in str(raised.value), str(raised.value)


def test_an_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DialectError, match="cannot read the dialect file"):
        load_dialect(tmp_path / "missing.toml")
    (tmp_path / "bad.toml").write_text("[routes\n")
    with pytest.raises(DialectError, match="not readable TOML"):
        load_dialect(tmp_path / "bad.toml")


def test_a_part_that_fails_names_the_invariants_it_costs() -> None:
    report = DialectReport(
        CONTRACT,
        [
            PartResult("routes.health", "GET /health", "ok", "answered 200"),
            PartResult("database.ledger", "SQL", "failed", "relation does not exist"),
            PartResult("answers.balance", "wallet.total", "failed", "read None"),
            PartResult("requests.tip", "key in header K", "doubtful", "answered again"),
        ],
    )
    assert not report.ok and not report.usable
    judged = report.not_judged()
    assert judged["ledger-explains-balance"] == ["database.ledger"]
    assert judged["answers-match-ledger"] == ["answers.balance"]
    assert "routes.health" not in {p for parts in judged.values() for p in parts}
    # A doubtful part (the service may ignore keys) costs nothing and stops no run.
    assert "requests.tip" not in {p for parts in judged.values() for p in parts}
    text = "\n".join(report.lines())
    assert "FAILED: relation does not exist" in text and "DOUBTFUL: answered again" in text
    assert "  credited-exactly-once: database.ledger" in text
    assert "not as the contract says (the dialect's mapping, or the service itself" in text
    doubtful_only = DialectReport(CONTRACT, [report.parts[0], report.parts[3]])
    assert doubtful_only.usable and not doubtful_only.ok


def test_the_contract_written_out_in_the_docs_is_the_default() -> None:
    text = (Path(__file__).parents[2] / "docs" / "dialects.md").read_text()
    block = text.split("## The contract, written out as a dialect", 1)[1]
    written = parse_dialect(tomllib.loads(block.split("```toml", 1)[1].split("```", 1)[0]))
    assert written.routes == CONTRACT.routes
    assert written.auth == CONTRACT.auth
    assert dict(written.database) == CONTRACT_SQL
    assert all(k == v for k, v in written.metadata.items())
    for route, fields in ANSWER_FIELDS.items():
        assert dict(written.answers[route]) == {f: f for f in fields}
    for outcome, (code, _) in OUTCOMES.items():
        assert code in written.statuses[outcome]
    bodies = {
        "purchase": purchase_body(500, "pm_card_visa", "k"),
        "tip": transfer_body("tip", "star", "12abc", context="live", key="k"),
        "deduct": transfer_body("deduct", "star", 3, context="call-1"),
    }
    for route, body in bodies.items():
        assert wire_request(written, route, body) == wire_request(CONTRACT, route, body)
        said = {"tokensDeducted": 3, "senderBalance": 1, "paymentIntent": {"id": "pi_1"}}
        for status in (200, 400, 402, 404, 409, 503):
            assert contract_answer(written, route, status, said) == (status, said)
