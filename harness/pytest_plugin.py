"""pytest plugin (entry point `pytest11`): options and fixture factories.

Thin over the library API. Under pytest-xdist each worker starts its own
server (about 0.7 s here) rather than coordinating one shared server across
processes; fresh databases are named with the worker id and a run id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.provisioning import (
    DatabaseFactory,
    ExistingPostgres,
    FreshDatabase,
    LocalPostgres,
    PostgresSettings,
    make_cluster,
)
from harness.target.options import TARGET_OPTIONS, TargetOption
from harness.target.start import ManagedTarget, Target, TargetSpec, open_target


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tokenproof")
    group.addoption(
        "--postgres-bin",
        default=None,
        metavar="DIR|auto",
        help="tokenproof: start PostgreSQL from system binaries in DIR ('auto': pg_config).",
    )
    group.addoption(
        "--database-url",
        default=None,
        metavar="URL",
        help="tokenproof: use this existing server (role needs CREATEDB) "
        "[env: TOKENPROOF_DATABASE_URL]; with --target-url, the target's own database.",
    )
    for option in TARGET_OPTIONS:
        _add_target_option(group, option)
    group.addoption(
        "--scenarios-from",
        action="append",
        default=[],
        metavar="MODULE",
        help="tokenproof: also run the scenarios of this module (repeatable).",
    )
    group.addoption(
        "--tokenproof-seed",
        default=1,
        type=int,
        metavar="N",
        help="tokenproof: seed for the scenarios (default 1).",
    )


def _add_target_option(group: pytest.OptionGroup, option: TargetOption) -> None:
    """One target option as pytest declares it: not given is None, so that the
    configuration file can fill it in."""
    kinds: dict[str, dict[str, Any]] = {
        "text": {},
        "flag": {"action": "store_true", "default": False},
        "many": {"action": "append", "default": []},
        "env": {"action": "append", "default": []},
        "paths": {"action": "append", "default": []},
        "seconds": {"type": float},
        "port": {"type": int},
    }
    extra = {"default": None, **kinds[option.kind]}
    if option.kind == "text" and option.default is not None and option.file_key is None:
        extra["default"] = option.default  # no file to fill it in: the default stands
    if option.metavar is not None and option.kind != "flag":
        extra["metavar"] = option.metavar
    group.addoption(option.in_pytest, help=f"tokenproof: {option.help}", **extra)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Stand on its own in another repository: register the marker it uses. (It
    needs nothing of pytest-asyncio: scenario tests are plain functions that run
    their own event loop, so tokenproof does not install pytest-asyncio for its
    users; this repository's own tests get it from the `dev` extra.)"""
    config.addinivalue_line(
        "markers", "tokenproof: a tokenproof scenario run against the target under test"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tokenproof_target" in getattr(item, "fixturenames", ()):
            item.add_marker("tokenproof")


@pytest.fixture(scope="session")
def postgres_settings(request: pytest.FixtureRequest) -> PostgresSettings:
    return PostgresSettings.resolve(
        postgres_bin=request.config.getoption("--postgres-bin"),
        database_url=request.config.getoption("--database-url"),
    )


@pytest.fixture(scope="session")
def postgres_cluster(
    postgres_settings: PostgresSettings,
) -> Iterator[LocalPostgres | ExistingPostgres]:
    with make_cluster(postgres_settings) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def reference_database_factory(
    postgres_cluster: LocalPostgres | ExistingPostgres,
) -> Iterator[DatabaseFactory]:
    import reference_impl

    factory = asyncio.run(DatabaseFactory.open(postgres_cluster, reference_impl.schema_files()))
    yield factory
    asyncio.run(factory.close())


@pytest.fixture
def fresh_database(reference_database_factory: DatabaseFactory) -> Iterator[FreshDatabase]:
    """A database of its own for one test, with the reference schema loaded."""
    database = asyncio.run(reference_database_factory.create())
    yield database
    asyncio.run(reference_database_factory.drop(database.name))


@pytest.fixture
def reference_target(reference_database_factory: DatabaseFactory) -> Iterator[Target]:
    """The reference service as a real process on a fresh database, with its own emulator."""
    with ManagedTarget(reference_database_factory) as target:
        yield target


@pytest.fixture(scope="session")
def tokenproof_target_spec(request: pytest.FixtureRequest) -> TargetSpec:
    return target_spec_of(request.config)


def target_spec_of(config: pytest.Config) -> TargetSpec:
    """The target the options ask for, the configuration file (tokenproof.toml or
    [tool.tokenproof] where pytest runs) filling in those not given."""
    from harness.config import resolve

    opt = config.getoption
    # The options the file may fill in, by their file key; the others as given.
    given = {o.file_key.replace("-", "_"): opt(o.in_pytest) for o in TARGET_OPTIONS if o.file_key}
    resolved = resolve(Path.cwd(), given)
    rest = {o.param: opt(o.in_pytest) for o in TARGET_OPTIONS if o.file_key is None}
    return TargetSpec.from_options(
        **resolved.options(only_target=True),
        **{k: v for k, v in rest.items() if v is not None},
        database_url=opt("--database-url"),
    )


@pytest.fixture(scope="session")
def tokenproof_target(
    request: pytest.FixtureRequest, tokenproof_target_spec: TargetSpec
) -> Iterator[Target]:
    """The target the scenarios run against (one per xdist worker)."""
    spec = tokenproof_target_spec
    settings = PostgresSettings.resolve(
        postgres_bin=request.config.getoption("--postgres-bin"),
        database_url=spec.server_url(request.config.getoption("--database-url")),
    )
    with open_target(spec, settings, seed=request.config.getoption("--tokenproof-seed")) as target:
        yield target


@pytest.fixture(scope="session")
def tokenproof_run_id() -> str:
    import secrets

    return secrets.token_hex(3)
