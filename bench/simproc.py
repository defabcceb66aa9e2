"""The sim in a process of its own, for the benchmarks: ``python -m bench.simproc --generate
repos=100,prs=10000,seed=1 --key-out FILE``. Prints one JSON line (url, App id, webhook secret,
load time, peak RSS after loading) and serves until terminated."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import signal
import time
from pathlib import Path

from sim.generate import GenerateSpec, generate
from sim.runner import SimConfig, SimServer, generate_private_key_pem


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--generate", required=True)
    parser.add_argument("--key-out", type=Path, required=True)
    parser.add_argument("--webhook-url", default=None)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()

    key = generate_private_key_pem()  # not part of loading an organisation
    started = time.perf_counter()
    spec = generate(GenerateSpec.parse(args.generate))
    server = SimServer(
        SimConfig(scenario=spec, private_key_pem=key, webhook_url=args.webhook_url, port=args.port)
    )
    load_seconds = time.perf_counter() - started
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    args.key_out.write_text(server.private_key_pem)
    args.key_out.chmod(0o600)
    await server.start()
    state = server.sim.state
    hello = {
        "url": server.base_url,
        "app_id": server.app_id,
        "webhook_secret": server.webhook_secret,
        "load_seconds": load_seconds,
        "peak_rss_mb": peak_rss_mb,
        "repositories": len(state.repos),
        "pulls": sum(
            1 for r in state.repos.values() for p in r.pulls.values() if p.state == "open"
        ),
        "installations": sorted(state.installations),
    }
    print(json.dumps(hello), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()


if __name__ == "__main__":
    asyncio.run(main())
