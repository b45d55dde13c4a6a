"""Benchmark: what PgBouncer in transaction mode, and the setting it needs, cost a store transaction.

    .venv/bin/python bench/pgbouncer.py                 # 3 rounds of 8 clients x 150 transactions
    .venv/bin/python bench/pgbouncer.py --rounds 5 --transactions 300

Starts its own embedded PostgreSQL (migrated) and Debian's ``pgbouncer`` in transaction pooling
mode in front of it (tests/fixtures/pgbouncer.py), then runs the same tenant-scoped transaction
(``tenant_transaction`` + ``upsert_user`` + ``get_user``: three statements, as the ingress and
the record activities do) as the application role ``lucy_app`` through Lucy's own engine in three
ways, interleaved in every round:

* ``direct``: straight to PostgreSQL, statement caches on (Lucy's default) — the baseline;
* ``direct, no cache``: straight to PostgreSQL with ``LUCY_DATABASE_PGBOUNCER=true`` (the cost of
  parsing every statement again, alone);
* ``pgbouncer``: through PgBouncer with ``LUCY_DATABASE_PGBOUNCER=true``.

Prints transactions per second for each and the ratio to ``direct`` of the same round, then the
median of each ratio over the rounds. Absolute figures depend on the machine; the ratios are the
result.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.devservers import LocalPostgres, free_port
from lucy import migrate
from lucy.db.repositories.tenants import get_user, tenant_transaction, upsert_user, upsert_workspace
from lucy.db.session import create_engine, create_sessionmaker
from lucy.settings import load_settings
from tests.fixtures.pgbouncer import PGBOUNCER, PgBouncer


async def _rate(url: str, *, pgbouncer: bool, clients: int, transactions: int) -> float:
    """Transactions per second of ``clients`` concurrent clients, ``transactions`` each."""
    settings = load_settings(database_url=url, database_pgbouncer=pgbouncer, database_pool_size=clients)
    engine = create_engine(settings.database)
    sessions = create_sessionmaker(engine)
    try:
        async with sessions.begin() as session:
            workspace = await upsert_workspace(session=session, slack_team_id=f"TB{uuid.uuid4().hex[:9]}")

        async def client(n: int) -> None:
            for i in range(transactions):
                async with tenant_transaction(sessions, workspace) as session:
                    user = f"U{n}X{i % 20}"
                    await upsert_user(session=session, workspace_id=workspace, slack_user_id=user)
                    assert await get_user(session=session, workspace_id=workspace, slack_user_id=user)

        await asyncio.gather(*(client(n) for n in range(clients)))  # warm: connections, caches
        started = time.perf_counter()
        await asyncio.gather(*(client(n) for n in range(clients)))
        return clients * transactions / (time.perf_counter() - started)
    finally:
        await engine.dispose()


async def main(rounds: int, clients: int, transactions: int) -> None:
    if PGBOUNCER is None:
        raise SystemExit("pgbouncer is not installed: apt-get install pgbouncer")
    # Commits wait for no disk (as the test suite's server, LUCY_PG_FSYNC_OFF): with fsync the
    # figure is the disk's, the same for all three ways.
    os.environ.setdefault("LUCY_PG_FSYNC_OFF", "1")
    with tempfile.TemporaryDirectory(prefix="lucy-bench-pgb-") as tmp:
        pg = LocalPostgres(Path(tmp) / "data", port=free_port())
        pg.start()
        bouncer = PgBouncer(pg, Path(tmp) / "pgbouncer", server_pool=clients)
        try:
            await asyncio.to_thread(migrate.upgrade, pg.url)
            bouncer.start()
            ways = {
                "direct": (pg.app_url, False),
                "direct, no cache": (pg.app_url, True),
                "pgbouncer": (bouncer.app_url, True),
            }
            ratios: dict[str, list[float]] = {name: [] for name in ways if name != "direct"}
            for r in range(rounds):
                order = list(ways)[r % 3 :] + list(ways)[: r % 3]  # each way goes first in turn
                rates = {
                    name: await _rate(
                        ways[name][0], pgbouncer=ways[name][1], clients=clients, transactions=transactions
                    )
                    for name in order
                }
                shown = ", ".join(f"{name} {rates[name]:.0f}/s" for name in ways)
                print(f"round {r + 1}: {shown}")
                for name in ratios:
                    ratios[name].append(rates[name] / rates["direct"])
            for name, values in ratios.items():
                print(
                    f"{name} / direct: median {statistics.median(values):.2f} "
                    f"(rounds: {', '.join(f'{v:.2f}' for v in values)})"
                )
        finally:
            bouncer.stop()
            pg.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--transactions", type=int, default=150)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.clients, args.transactions))
