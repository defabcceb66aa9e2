"""The reference points of github-facts.md: a minimal aiohttp receiver that checks the HMAC and
answers 202, storing nothing; with ``--postgres URL``, the same receiver storing each delivery
first with PostgreSQL group commit (2 writer tasks, up to 500 rows per transaction, raw asyncpg,
acknowledged after the commit). ``python -m bench.minimal_receiver --port P --secret S
[--postgres URL]``; prints one JSON line when it listens. Measured in the same run as prsteward,
so the figures compare as ratios."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
from typing import Any

from aiohttp import web

WRITERS = 2
BATCH_MAX = 500


def build(secret: str, queue: asyncio.Queue[Any] | None = None) -> web.Application:
    key = secret.encode()

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        expected = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("X-Hub-Signature-256", "")):
            return web.Response(status=401)
        if queue is not None:
            done = asyncio.get_running_loop().create_future()
            delivery = request.headers.get("X-GitHub-Delivery", "")
            await queue.put((delivery, request.headers.get("X-GitHub-Event", ""), body, done))
            await done
        return web.Response(status=202)

    app = web.Application(client_max_size=26 * 1024 * 1024)
    app.router.add_post("/webhooks", receive)
    return app


async def serve(port: int, secret: str, postgres: str | None) -> None:
    queue: asyncio.Queue[Any] | None = None
    writers: list[asyncio.Task[None]] = []
    if postgres:
        import asyncpg

        pool = await asyncpg.create_pool(postgres, min_size=WRITERS, max_size=WRITERS)
        await pool.execute(
            "CREATE TABLE IF NOT EXISTS reference_inbox (id bigserial PRIMARY KEY, "
            "delivery_id text UNIQUE, event text, payload bytea, "
            "received_at timestamptz DEFAULT now())"
        )
        queue = asyncio.Queue()

        async def writer() -> None:
            assert queue is not None
            while True:
                batch = [await queue.get()]
                while len(batch) < BATCH_MAX and not queue.empty():
                    batch.append(queue.get_nowait())
                async with pool.acquire() as connection, connection.transaction():
                    await connection.executemany(
                        "INSERT INTO reference_inbox (delivery_id, event, payload) "
                        "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                        [item[:3] for item in batch],
                    )
                for *_, done in batch:
                    done.set_result(True)

        writers = [asyncio.create_task(writer()) for _ in range(WRITERS)]
    runner = web.AppRunner(build(secret, queue), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print(json.dumps({"listening": port}), flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        for task in writers:
            task.cancel()
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--postgres", default=None, help="store with group commit here first")
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.secret, args.postgres))


if __name__ == "__main__":
    main()
