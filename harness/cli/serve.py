"""`tokenproof serve`, `postgres` and `stripe-emulator`: servers to try things by hand."""

from __future__ import annotations

import json
import sys
import threading

import click

from harness.cli import common
from harness.cli.app import main
from harness.cli.common import err
from harness.emulator.command import stripe_emulator
from harness.errors import UsageError
from harness.provisioning import make_cluster


@main.command()
@common.postgres_options
@click.option("--fan", default="fan-1", help="Demo fan to create and sign for.")
@click.option("--grant", type=click.IntRange(0, 10**9), default=1000)
def serve(
    postgres: common.PostgresChoice,
    fan: str,
    grant: int,
) -> None:
    """Run PostgreSQL, the Stripe emulator and the reference service until Ctrl-C.

    Creates a fan (with a starting grant) and a creator `creator-1`, and prints
    the URLs and a bearer token for the fan, for trying the service by hand.
    """
    import asyncio

    import asyncpg

    import reference_impl
    from harness.provisioning import DatabaseFactory
    from harness.target.auth import make_token
    from harness.target.start import ManagedTarget
    from harness.target.users import UserSpec, create_users

    def body() -> int:
        settings = postgres.settings()
        with make_cluster(settings) as cluster:
            factory = asyncio.run(DatabaseFactory.open(cluster, reference_impl.schema_files()))
            try:
                with ManagedTarget(factory) as target:

                    async def seed() -> None:
                        conn = await asyncpg.connect(target.database_url)
                        try:
                            await create_users(
                                conn,
                                [
                                    UserSpec(fan, grant=grant),
                                    UserSpec("creator-1", is_creator=True),
                                ],
                            )
                        finally:
                            await conn.close()

                    asyncio.run(seed())
                    click.echo(f"service:         {target.base_url}")
                    click.echo(f"stripe emulator: {target.emulator_url}  (/_control/state)")
                    click.echo(f"database:        {target.database_url}")
                    click.echo(
                        f"token for {fan}: {make_token(fan, target.jwt_secret, ttl_s=86400)}"
                    )
                    sys.stdout.flush()
                    err.print("Ctrl-C stops everything and deletes the data.")
                    threading.Event().wait()
            finally:
                asyncio.run(factory.close())
        return common.EXIT_OK

    common.run_command(body)


@main.command()
@common.postgres_options
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON line with url, pid, data_dir."
)
def postgres(postgres: common.PostgresChoice, as_json: bool) -> None:
    """Start a throwaway PostgreSQL on loopback and serve until Ctrl-C.

    Prints the superuser URL. The data directory is deleted when it stops.
    """

    def body() -> int:
        settings = postgres.settings()
        if settings.source == "existing":
            raise UsageError("`tokenproof postgres` starts a server; drop --database-url")
        with make_cluster(settings) as cluster:
            info = {
                "url": cluster.admin_dsn,
                "pid": getattr(cluster, "pid", None),
                "data_dir": str(getattr(cluster, "workdir", "")),
            }
            if as_json:
                click.echo(json.dumps(info), nl=True)
                sys.stdout.flush()
            else:
                err.print(f"[green]ready:[/] {cluster.describe()}")
                click.echo(info["url"])
                err.print("Ctrl-C stops the server and deletes its data.")
            threading.Event().wait()  # until a signal ends us; cleanup is in `with`
        return common.EXIT_OK

    common.run_command(body)


# The emulator's own click command, also `python -m harness.emulator`.
main.add_command(stripe_emulator)
