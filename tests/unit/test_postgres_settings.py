from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.provisioning import (
    ExistingPostgres,
    PostgresBinariesNotFound,
    PostgresSettings,
    ProvisioningError,
    SchemaLoadFailed,
)
from harness.provisioning.binaries import system_binaries
from harness.provisioning.databases import read_schema
from harness.provisioning.existing import redact, replace_database


def test_default_is_embedded() -> None:
    settings = PostgresSettings.resolve(env={})
    assert settings.source == "embedded"
    assert settings.port is None


def test_env_url_selects_existing_server() -> None:
    settings = PostgresSettings.resolve(env={"TOKENPROOF_DATABASE_URL": "postgresql://u@h/db"})
    assert settings.source == "existing"
    assert settings.database_url == "postgresql://u@h/db"


def test_explicit_binaries_win_over_env_url() -> None:
    settings = PostgresSettings.resolve(
        postgres_bin="/opt/pg/bin", env={"TOKENPROOF_DATABASE_URL": "postgresql://u@h/db"}
    )
    assert settings.source == "system"
    assert settings.bin_dir == Path("/opt/pg/bin")


def test_auto_binaries_defer_to_pg_config() -> None:
    settings = PostgresSettings.resolve(postgres_bin="auto", env={})
    assert settings.source == "system"
    assert settings.bin_dir is None


def test_binaries_and_url_together_are_a_usage_error() -> None:
    with pytest.raises(UsageError, match="exclude each other"):
        PostgresSettings.resolve(postgres_bin="/x", database_url="postgresql://u@h/db", env={})


@pytest.mark.parametrize("port", [0, -1, 70000])
def test_port_out_of_range(port: int) -> None:
    with pytest.raises(UsageError, match="out of range"):
        PostgresSettings.resolve(port=port, env={})


def test_port_with_existing_server_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        PostgresSettings.resolve(database_url="postgresql://u@h/db", port=5432, env={})


def test_system_binaries_in_an_empty_dir_are_reported(tmp_path: Path) -> None:
    with pytest.raises(PostgresBinariesNotFound, match="initdb, postgres"):
        system_binaries(tmp_path)


def test_system_binaries_not_a_dir(tmp_path: Path) -> None:
    with pytest.raises(PostgresBinariesNotFound, match="not a directory"):
        system_binaries(tmp_path / "missing")


def test_existing_server_rejects_a_non_postgres_url() -> None:
    with pytest.raises(ProvisioningError, match="not a PostgreSQL URL"):
        ExistingPostgres("mysql://u:p@h/db")


def test_redact_hides_the_password() -> None:
    assert redact("postgresql://u:secret@h:5/db") == "postgresql://u:***@h:5/db"
    assert redact("postgresql://u@h/db") == "postgresql://u@h/db"


def test_replace_database_keeps_credentials_and_query() -> None:
    url = "postgresql://u:p@h:5/admin?sslmode=disable"
    assert replace_database(url, "x") == "postgresql://u:p@h:5/x?sslmode=disable"


def test_unreadable_schema_file(tmp_path: Path) -> None:
    with pytest.raises(SchemaLoadFailed, match="cannot read schema file"):
        read_schema([tmp_path / "nope.sql"])
