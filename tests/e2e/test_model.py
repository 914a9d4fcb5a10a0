"""The model suite end to end: its budget reaches Hypothesis, and it finds a defect.

The selftest's quick tier leaves the model out (shrinking takes minutes), so this
is where CI proves the model can fail: on a variant without the funds check,
generation alone (no shrinking) must report a failing sequence.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable, Iterator

import pytest
from hypothesis import Phase, settings
from hypothesis.stateful import MultipleResults

import scenarios.model
from harness.model import CI_PROFILE, Tally, TokenModel, run_model
from harness.model.base import Keyed
from harness.model.faults import CROWD
from harness.provisioning import DatabaseFactory
from harness.run.options import RunOptions
from harness.run.scenario import REGISTRY, load_suites
from harness.run.verify import verify
from harness.target.start import ManagedTarget, Target


@pytest.fixture
def no_funds_check_target(reference_database_factory: DatabaseFactory) -> Iterator[Target]:
    command = (sys.executable, "-m", "harness.flaws", "no-funds-check")
    with ManagedTarget(reference_database_factory, command, name="no-funds-check") as target:
        yield target


def test_budget_and_progress_reach_the_run(
    reference_target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_suites()
    monkeypatch.setattr(scenarios.model, "PROGRESS_EVERY_S", 0.2)
    progress: list[str] = []
    options = RunOptions(model_examples=3, model_steps=4, on_progress=progress.append)
    model = REGISTRY["model/state-machine"]
    report = asyncio.run(verify(reference_target, [model], seed=3, options=options))
    assert report.verdict == "pass", report.to_json()
    [notes] = [s.notes for s in report.scenarios]
    examples = int(notes[0].split()[0])
    # The CI profile would run at least 25; a budget of 3 runs a handful.
    assert 3 <= examples < 10, notes
    # The model's requests are counted though they are not in the runner's history.
    assert report.scenarios[0].op_count > 0 and not report.scenarios[0].ops
    assert progress and all("model checks" in line for line in progress)
    assert report.reproduce(report.scenarios[0]).endswith(
        "--examples 3 --steps 4 --scenario model/state-machine --seed 3"
    )


def test_model_finds_a_missing_funds_check(no_funds_check_target: Target) -> None:
    generate_only = settings(CI_PROFILE, phases=[Phase.explicit, Phase.generate])
    tally = Tally()
    outcome = run_model(no_funds_check_target, generate_only, seed=1, tally=tally)
    assert not outcome.passed
    assert tally.requests > 0  # counted in teardown, which a failing example runs too
    assert outcome.steps is not None and outcome.steps >= 1
    assert "state = TokenModelRun()" in outcome.text
    assert "@reproduce_failure(" in outcome.text
    # The failing check leads; Hypothesis's own report (the reproduce blob) follows.
    first = outcome.text.splitlines()[0]
    assert first.startswith("The model failed: AssertionError: "), outcome.text[:2000]
    assert outcome.text.index("state = TokenModelRun()") < outcome.text.index("@reproduce_failure(")
    assert tally.examples >= 1


# One call of a rule and its defect: the rule alone, on a fresh machine, must see
# the defect (the invariant runs after it, as Hypothesis runs it after each step).
RULE_CALLS: dict[str, Callable[[TokenModel], object]] = {
    "tip-retry-double-debit": lambda m: m.double_submit(
        f="tip", fan="fan0", creator="star0", amount=10, copies=2
    ),
    "leaky-errors": lambda m: m.purchase_during_outage(fan="fan0", tokens=100),
    "lock-order-deadlock": lambda m: m.crossing_transfers(f="tip", amounts=[10] * 6),
    "lost-update": lambda m: m.burst(
        ops=[("tip", "fan0", "star0", 10), ("tip", "fan0", "star0", 10)]
    ),
    "ignores-canceled": lambda m: m.customer_acts(
        pending=m.purchase_three_ds(fan="fan0", tokens=100), action="abandon"
    ),
    "leaky-database-errors": lambda m: m.database_connections_killed(amount=5, tips=3),
    "leading-zero-amounts": lambda m: m.bad_amounts(f="tip", fan="fan0"),
    "webhook-not-idempotent": lambda m: m.purchase(
        fan="fan0", tokens=100, method="pm_card_visa", delivery="duplicate"
    ),
    "retry-double-charge": lambda m: m.double_submit(
        f="purchase", fan="fan0", creator="star0", amount=0, copies=4
    ),
    "connection-held-across-stripe": lambda m: m.purchases_wait_on_slow_stripe(
        fan="fan0", purchases=CROWD, delivery=None
    ),
}


@contextlib.contextmanager
def machine_on(target: Target) -> Iterator[TokenModel]:
    machine = TokenModel.bind(target)()
    try:
        machine.create_users(grants=[100, 100, 100, 100])
        yield machine
    finally:
        machine.teardown()


def step_and_check(machine: TokenModel, call: Callable[[TokenModel], object]) -> None:
    call(machine)
    machine.service_matches_model()


@pytest.mark.parametrize("flaw", sorted(RULE_CALLS))
def test_each_rule_catches_its_defect_every_time(
    flaw: str, reference_database_factory: DatabaseFactory
) -> None:
    """Three fresh machines, three failures: the race replays, so it shrinks
    (for lost-update and lock-order-deadlock this is the contention gate's doing)."""
    command = (sys.executable, "-m", "harness.flaws", flaw)
    with ManagedTarget(reference_database_factory, command, name=flaw) as target:
        for _ in range(3):
            with machine_on(target) as machine, pytest.raises(AssertionError):
                step_and_check(machine, RULE_CALLS[flaw])
            # The step log (shown when Hypothesis cannot shrink a race) has the call.
            assert machine.tally.shortest_failure is not None
            steps, error = machine.tally.shortest_failure
            assert steps[0].startswith("state.create_users(grants=[100, 100, 100, 100])")
            # create_users, the rule call(s) (two for a 3-D Secure purchase and
            # what the customer does), and the invariant when it is what failed.
            assert 2 <= len(steps) <= 4 and error.startswith("AssertionError: ")


def test_the_rules_pass_on_the_reference(reference_target: Target) -> None:
    with machine_on(reference_target) as machine:
        results = [call(machine) for call in RULE_CALLS.values()]
        results.append(
            machine.purchases_wait_on_slow_stripe(fan="fan0", purchases=2, delivery="parallel")
        )
        results.append(
            machine.double_submit(f="deduct", fan="fan1", creator="star1", amount=7, copies=8)
        )
        machine.service_matches_model()
        # The fault steps: the service survives each, and the ledger stays whole.
        machine.service_restarted(amount=5, tips=2)
        machine.service_matches_model()
        results.append(
            machine.purchase_through_stripe_errors(
                fan="fan1", tokens=100, calls=1, delivery="duplicate"
            )
        )
        machine.purchase_times_out(fan="fan0", tokens=500, delivery="reorder")
        for f, unknown_creator in [("tip", True), ("deduct", False), ("purchase", False)]:
            results.append(
                machine.key_reused_after_refusal(
                    f=f, fan="fan1", creator="star1", amount=3, unknown_creator=unknown_creator
                )
            )
        machine.service_matches_model()
        keyed = [
            k
            for result in results
            for k in (result.values if isinstance(result, MultipleResults) else [result])
        ]
        for request in keyed:
            if isinstance(request, Keyed):
                # An outage's purchase now succeeds; the others replay their answer.
                machine.retry(request=request)
                machine.reuse_key_with_another_body(request=request, more=3)
        machine.service_matches_model()
    # purchase_during_outage, purchase, two purchases on a slow Stripe and 24 in a
    # crowd, two double submits, the purchase through Stripe errors, three refusals.
    assert sum(isinstance(k, Keyed) for k in keyed) == 35
