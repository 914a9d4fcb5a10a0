"""Which PostgreSQL to use, resolved once into a frozen value."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness.errors import UsageError

Source = Literal["embedded", "system", "existing"]


@dataclass(frozen=True)
class PostgresSettings:
    source: Source = "embedded"
    bin_dir: Path | None = None  # for "system": None means "find through pg_config"
    database_url: str | None = None  # for "existing"
    port: int | None = None  # for local servers: None picks a free port

    @classmethod
    def resolve(
        cls,
        *,
        postgres_bin: str | None = None,
        database_url: str | None = None,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
    ) -> PostgresSettings:
        """Explicit arguments first, then TOKENPROOF_DATABASE_URL, then embedded."""
        env = os.environ if env is None else env
        if postgres_bin and database_url:
            raise UsageError(
                "--postgres-bin and --database-url exclude each other: binaries start a "
                "server of our own, a URL names one that already runs; pass one"
            )
        if port is not None and not 1 <= port <= 65535:
            raise UsageError(f"port {port} is out of range; pass 1-65535 or omit it")
        if database_url is None and not postgres_bin:
            database_url = env.get("TOKENPROOF_DATABASE_URL") or None
        if database_url:
            if port is not None:
                raise UsageError("--postgres-port applies only to servers tokenproof starts")
            return cls(source="existing", database_url=database_url)
        if postgres_bin:
            bin_dir = None if postgres_bin == "auto" else Path(postgres_bin)
            return cls(source="system", bin_dir=bin_dir, port=port)
        return cls(source="embedded", port=port)
