"""Preflight names every table and column of the contract that is missing."""

from __future__ import annotations

from harness.target.preflight import CONTRACT_COLUMNS, missing_columns


def test_missing_tables_and_columns_are_named() -> None:
    everything = {(t, c) for t, cols in CONTRACT_COLUMNS.items() for c in cols}
    assert missing_columns(everything) == []
    without = everything - {("token_transactions", "client_idempotency_key")}
    without = {(t, c) for t, c in without if t != "creator_earnings"}
    assert missing_columns(without) == [
        "token_transactions.client_idempotency_key",
        "creator_earnings",
    ]
    assert missing_columns(set()) == list(CONTRACT_COLUMNS)
