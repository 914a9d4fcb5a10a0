"""`tokenproof dialect check` and verify's preflight on a dialect, as a user runs
them: the reference service (which speaks the contract) behind a dialect file
that words some parts otherwise. Those parts fail, each naming the invariants it
costs; verify stops before any scenario. The foreign service that speaks a whole
dialect of its own is judged in tests/e2e/test_foreign.py."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from reference_impl import schema_files
from tests.foreign import Foreign, prepare

CLI = [sys.executable, "-m", "harness"]
REFERENCE = shlex.join([sys.executable, "-m", "reference_impl"])
# Parts the reference does not have: a tip route elsewhere, a balance field by
# another name. Everything else stays the contract's.
INCOMPLETE = """
name = "half-right"
[routes]
tip = "POST /v1/tips"
[answers.balance]
balance = "wallet.available"
"""


def _target(tmp_path: Path, dialect: str) -> list[str]:
    path = tmp_path / "dialect.toml"
    path.write_text(dialect)
    schemas = [a for f in schema_files() for a in ("--target-schema", str(f))]
    return ["--target-command", REFERENCE, *schemas, "--dialect", str(path)]


def _check(args: list[str], exit_code: int = 1) -> tuple[str, dict[str, str], str]:
    """`tokenproof dialect check ARGS`: its output, its rows by part, and its list
    of what cannot be judged."""
    result = subprocess.run(
        [*CLI, "dialect", "check", *args], capture_output=True, text=True, timeout=300
    )
    out = result.stdout
    assert result.returncode == exit_code, out + result.stderr[-3000:]
    rows = {line.split()[0]: line for line in out.splitlines() if line[:1].isalpha()}
    marker = "cannot be judged until these parts answer as the contract says:"
    return out, rows, out.split(marker)[1] if marker in out else ""


def test_a_dialect_the_service_does_not_speak_names_its_parts_and_their_cost(
    tmp_path: Path,
) -> None:
    out, rows, costs = _check(_target(tmp_path, INCOMPLETE))
    assert "FAILED" in rows["routes.tip"] and "POST /v1/tips" in rows["routes.tip"]
    assert "FAILED" in rows["answers.balance"] and "wallet.available" in rows["answers.balance"]
    # The parts left to the contract answered, and say they are its defaults.
    assert "ok" in rows["routes.deduct"] and "contract default" in rows["routes.deduct"]
    assert "ok" in rows["database.ledger"]
    assert "  answers-match-ledger: answers.balance" in costs
    assert "  debit-equals-credit: routes.tip" in costs
    assert "ledger-explains-balance" not in costs  # the ledger answered
    assert out.rstrip().endswith("dialect check: fail")


def test_verify_stops_before_any_scenario_on_a_dialect_that_does_not_answer(
    tmp_path: Path,
) -> None:
    result = subprocess.run(
        [*CLI, "verify", "--suite", "race", *_target(tmp_path, INCOMPLETE)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-3000:]
    assert "does not answer as its dialect says" in result.stderr
    assert "routes.tip" in result.stderr and "race/" not in result.stdout


def test_the_contracts_own_words_pass(tmp_path: Path) -> None:
    """A dialect that words one part as the contract already does changes nothing."""
    out, _, costs = _check(_target(tmp_path, '[routes]\ntip = "POST /api/tokens/tip"\n'), 0)
    assert not costs and "dialect check: pass" in out


@pytest.fixture(scope="session")
def fastify(request: pytest.FixtureRequest) -> Foreign:
    cache = request.config.cache
    assert cache is not None
    return prepare("fastify-credits", Path(cache.mkdir("foreign-services")))


@pytest.mark.needs_node
def test_an_incomplete_dialect_names_what_is_missing_and_what_it_costs(
    fastify: Foreign, tmp_path: Path
) -> None:
    """The service's own dialect file without its SQL and without where a tip's
    answer keeps the balances: the contract's defaults stand in for them and do
    not answer, and each missing part's invariants are named."""
    assert fastify.dialect is not None
    data = tomllib.loads(fastify.dialect.read_text())
    del data["database"], data["answers"]["tip"]
    incomplete = tmp_path / "incomplete.toml"
    incomplete.write_text(_toml(data))
    args = ["--target-command", fastify.command, "--target-cwd", str(fastify.cwd)]
    args += ["--dialect", str(incomplete)]
    _, rows, costs = _check(args)
    # Users cannot be made in the contract's tables: nothing after that is tried.
    assert (
        "FAILED" in rows["database.create-user"]
        and "contract default" in rows["database.create-user"]
    )
    assert "not tried" in rows["database.ledger"]
    assert "  every invariant: database.create-user, database.grant" in costs
    # With the SQL back, the routes answer and only the tip's answer is missing.
    del data["answers"]
    data["database"] = tomllib.loads(fastify.dialect.read_text())["database"]
    incomplete.write_text(_toml(data))
    _, rows, costs = _check(args)
    assert "ok" in rows["routes.tip"] and "FAILED" in rows["answers.tip"]
    assert "ok" in rows["database.ledger"] and "ok" in rows["routes.webhook"]
    assert "  answers-match-ledger: answers.balance, answers.tip, answers.deduct" in costs


def _toml(data: dict[str, Any]) -> str:
    """A dialect as TOML again (tables of strings, lists and inline tables)."""
    lines: list[str] = []

    def value(v: Any) -> str:
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{json.dumps(k)} = {value(x)}" for k, x in v.items()) + " }"
        return json.dumps(v)

    def table(prefix: str, body: dict[str, Any]) -> None:
        plain = {
            k: v for k, v in body.items() if not (isinstance(v, dict) and _is_table(k, prefix))
        }
        if prefix:
            lines.append(f"[{prefix}]")
        lines.extend(f"{json.dumps(k)} = {value(v)}" for k, v in plain.items())
        for k, v in body.items():
            if k not in plain:
                table(f"{prefix}.{k}" if prefix else k, v)

    table("", data)
    return "\n".join(lines) + "\n"


def _is_table(key: str, prefix: str) -> bool:
    """Which dicts are tables of their own in a dialect file (the rest are inline)."""
    return prefix in ("", "requests", "answers")
