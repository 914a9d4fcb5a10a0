"""PostgreSQL for tests and scenarios: one API used by the CLI, the pytest plugin
and the benchmarks.

    settings = PostgresSettings.resolve(postgres_bin=..., database_url=...)
    with make_cluster(settings) as cluster:
        factory = await DatabaseFactory.open(cluster, schema_files)
        db = await factory.create()      # fresh database, schema loaded
"""

from __future__ import annotations

from harness.provisioning.binaries import PostgresBinaries, embedded_binaries, system_binaries
from harness.provisioning.config import PostgresSettings
from harness.provisioning.databases import Cluster, DatabaseFactory, FreshDatabase
from harness.provisioning.errors import (
    FolderLeftBehind,
    MissingCreatedbPrivilege,
    PortInUse,
    PostgresBinariesNotFound,
    ProvisioningError,
    SchemaLoadFailed,
    ServerStartFailed,
    ServerUnreachable,
)
from harness.provisioning.existing import ExistingPostgres
from harness.provisioning.local import LocalPostgres

__all__ = [
    "Cluster",
    "DatabaseFactory",
    "ExistingPostgres",
    "FolderLeftBehind",
    "FreshDatabase",
    "LocalPostgres",
    "MissingCreatedbPrivilege",
    "PortInUse",
    "PostgresBinaries",
    "PostgresBinariesNotFound",
    "PostgresSettings",
    "ProvisioningError",
    "SchemaLoadFailed",
    "ServerStartFailed",
    "ServerUnreachable",
    "embedded_binaries",
    "make_cluster",
    "system_binaries",
]


def make_cluster(settings: PostgresSettings) -> LocalPostgres | ExistingPostgres:
    """An unstarted server per the settings; start it with `with` or `start()`."""
    if settings.source == "existing":
        assert settings.database_url is not None
        return ExistingPostgres(settings.database_url)
    binaries = (
        embedded_binaries() if settings.source == "embedded" else system_binaries(settings.bin_dir)
    )
    return LocalPostgres(binaries, port=settings.port)
