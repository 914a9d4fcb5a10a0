"""Tip throughput of the reference service against pgbench running the same transaction.

    .venv/bin/python benchmarks/tip_throughput.py [--seconds 10] [--clients 8]

Both run on one embedded PostgreSQL in the same run: HTTP tips through the
reference service (8 concurrent keep-alive clients on one event loop), then pgbench with
the tip's SQL, on random accounts and on one hot account. Prints tips/s,
p50/p99 latency and the HTTP / pgbench ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import subprocess
import tempfile
import time

import asyncpg

import reference_impl
from harness.provisioning import DatabaseFactory, LocalPostgres, embedded_binaries
from harness.target.auth import make_token
from harness.target.start import ManagedTarget
from harness.target.users import UserSpec, create_users

FANS, CREATORS = 1000, 100
PGBENCH_SCRIPT = """
\\set f random(1, {fans})
\\set c random(1, {creators})
BEGIN;
INSERT INTO token_balances (user_id) VALUES ('c' || :c) ON CONFLICT DO NOTHING;
SELECT user_id, balance FROM token_balances
  WHERE user_id IN ('f' || :f, 'c' || :c) ORDER BY user_id FOR UPDATE;
UPDATE token_balances SET balance = balance - 1, version = version + 1
  WHERE user_id = 'f' || :f AND balance >= 1;
UPDATE token_balances SET balance = balance + 1, total_earned = total_earned + 1,
  version = version + 1 WHERE user_id = 'c' || :c;
INSERT INTO token_transactions (user_id, type, tokens, amount_usd, status, related_user_id, channel)
  VALUES ('f' || :f, 'tip', -1, 0.05, 'completed', 'c' || :c, 'bench');
INSERT INTO token_transactions (user_id, type, tokens, amount_usd, status, related_user_id, channel)
  VALUES ('c' || :c, 'tip', 1, 0.05, 'completed', 'f' || :f, 'bench');
INSERT INTO creator_earnings (creator_id, earning_type, source_id, tokens_earned, usd_value, fan_id)
  VALUES ('c' || :c, 'tip', 'pgb_' || currval('token_transactions_id_seq'), 1, 0.05, 'f' || :f);
UPDATE users SET total_earnings = total_earnings + 0.05 WHERE supabase_id = 'c' || :c;
COMMIT;
"""


class KeepAliveClient:
    """A minimal HTTP/1.1 keep-alive client: httpx spends more CPU per request than
    the service does, and on 2 cores the client would be what is measured."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, token: str, body: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
        await self.reader.readexactly(length)
        return status

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


async def http_phase(
    url: str, secret: str, clients: int, seconds: float, hot: bool
) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    errors = 0
    rng = random.Random(1)
    host, port = url.removeprefix("http://").split(":")
    tokens = {f"f{i}": make_token(f"f{i}", secret) for i in range(1, FANS + 1)}
    deadline = time.monotonic() + seconds

    async def worker() -> None:
        nonlocal errors
        client = KeepAliveClient(host, int(port))
        try:
            while time.monotonic() < deadline:
                fan = "f1" if hot else f"f{rng.randint(1, FANS)}"
                creator = "c1" if hot else f"c{rng.randint(1, CREATORS)}"
                body = json.dumps({"creatorId": creator, "tokenAmount": 1, "channel": "bench"})
                started = time.perf_counter()
                status = await client.post("/api/tokens/tip", tokens[fan], body.encode())
                latencies.append(time.perf_counter() - started)
                errors += status != 200
        finally:
            await client.close()

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(clients)))
    elapsed = time.monotonic() - started
    return len(latencies) / elapsed, latencies, errors


def pgbench_phase(
    server: LocalPostgres, dsn_db: str, clients: int, seconds: float, hot: bool
) -> float:
    script = PGBENCH_SCRIPT.format(fans=1 if hot else FANS, creators=1 if hot else CREATORS)
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(script)
    try:
        result = subprocess.run(
            [
                str(embedded_binaries().path("pgbench")),
                "-n",
                "-h",
                "127.0.0.1",
                "-p",
                str(server.port),
                "-U",
                "postgres",
                "-c",
                str(clients),
                "-j",
                "2",
                "-T",
                str(int(seconds)),
                "-f",
                f.name,
                dsn_db,
            ],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PGPASSWORD": server.password},
        )
    finally:
        os.unlink(f.name)
    match = re.search(r"tps = ([0-9.]+)", result.stdout)
    assert match, result.stdout + result.stderr
    return float(match.group(1))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    users = [UserSpec(f"f{i}", grant=10**8) for i in range(1, FANS + 1)]
    users += [UserSpec(f"c{i}", is_creator=True) for i in range(1, CREATORS + 1)]
    with LocalPostgres(embedded_binaries()) as server:
        factory = asyncio.run(DatabaseFactory.open(server, reference_impl.schema_files()))
        with ManagedTarget(factory) as target:

            async def seed() -> None:
                conn = await asyncpg.connect(target.database_url)
                await create_users(conn, users)
                await conn.close()

            asyncio.run(seed())
            db_name = target.database_url.rsplit("/", 1)[1]
            for hot in (False, True):
                label = "one hot account" if hot else "random accounts"
                rate, lat, errors = asyncio.run(
                    http_phase(target.base_url, target.jwt_secret, args.clients, args.seconds, hot)
                )
                tps = pgbench_phase(server, db_name, args.clients, args.seconds, hot)
                print(
                    f"{label:<16} HTTP {rate:7.0f} tips/s  p50 {pct(lat, 0.5):6.1f} ms  "
                    f"p99 {pct(lat, 0.99):6.1f} ms  non-200 {errors} | pgbench {tps:7.0f} tx/s | "
                    f"ratio {rate / tps:4.2f}"
                )
        asyncio.run(factory.close())


if __name__ == "__main__":
    main()
