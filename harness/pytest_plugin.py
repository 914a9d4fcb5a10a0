"""pytest plugin (entry point `pytest11`): options and fixture factories.

Thin over the library API. Under pytest-xdist each worker starts its own
server (about 0.7 s here) rather than coordinating one shared server across
processes; fresh databases are named with the worker id and a run id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.emulator.defaults import DEFAULT_WEBHOOK_SECRET
from harness.provisioning import (
    DatabaseFactory,
    ExistingPostgres,
    FreshDatabase,
    LocalPostgres,
    PostgresSettings,
    make_cluster,
)
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
    group.addoption(
        "--target",
        default=None,
        metavar="reference[:FLAW]",
        help="tokenproof: the service the scenarios run against (default: reference).",
    )
    group.addoption(
        "--target-command",
        default=None,
        metavar="CMD",
        help="tokenproof: start your service with this command.",
    )
    group.addoption("--target-cwd", default=None, metavar="DIR")
    group.addoption(
        "--target-image",
        default=None,
        metavar="IMAGE[:TAG]",
        help="tokenproof: start your service's container image (Docker).",
    )
    group.addoption(
        "--tokenproof-pull",
        action="store_true",
        default=False,
        help="tokenproof: pull --target-image first (it never pulls unless asked).",
    )
    group.addoption(
        "--target-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="tokenproof: extra environment for the service it starts (repeatable).",
    )
    group.addoption("--target-schema", action="append", default=[], metavar="FILE")
    group.addoption(
        "--target-url", default=None, metavar="URL", help="tokenproof: a service already running."
    )
    _timing_options(group)
    group.addoption("--jwt-secret", default=None, metavar="S")
    group.addoption("--webhook-secret", default=DEFAULT_WEBHOOK_SECRET, metavar="S")
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


def _timing_options(group: pytest.OptionGroup) -> None:
    group.addoption(
        "--service-start-timeout",
        default=None,
        type=float,
        metavar="SECONDS",
        help="tokenproof: how long a service it starts may take to answer /health (default 60).",
    )
    group.addoption(
        "--settle-timeout",
        default=None,
        type=float,
        metavar="SECONDS",
        help="tokenproof: after webhook deliveries settle, how long the service may take "
        "to show their effects before an uncredited intent is reported (default 10).",
    )


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
    from harness.config import TARGET_KEYS, resolve

    opt = config.getoption
    # Each configuration key that says which service has the option of its name.
    given = {key: opt("--" + key.replace("_", "-")) for key in TARGET_KEYS}
    resolved = resolve(Path.cwd(), given)
    return TargetSpec.from_options(
        **resolved.options(only_target=True),
        pull=opt("--tokenproof-pull"),
        database_url=opt("--database-url"),
        jwt_secret=opt("--jwt-secret"),
        webhook_secret=opt("--webhook-secret"),
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
