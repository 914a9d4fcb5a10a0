"""The `tokenproof` command group; the commands register themselves on it."""

from __future__ import annotations

import click

from harness import __version__


# Every option's default is shown in --help (an option without one shows none).
@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(__version__, prog_name="tokenproof")
def main() -> None:
    """tokenproof: concurrency tests and verification for token ledgers paid through Stripe.

    It provisions PostgreSQL, a stateful Stripe emulator and the service under
    test, forces races and webhook orderings, and checks that no token is ever
    double credited, double charged, lost, or left unexplained by the ledger.
    """
    from harness.cache import keep_hypothesis_in_cache

    keep_hypothesis_in_cache()  # no .hypothesis/ in the user's working directory
