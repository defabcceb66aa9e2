"""The reference point of github-facts.md: a minimal aiohttp receiver that checks the HMAC and
answers 202, storing nothing. ``python -m bench.minimal_receiver --port P --secret S``; prints one
JSON line when it listens. Measured in the same run as prsteward, so the two compare as a ratio."""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json

from aiohttp import web


def build(secret: str) -> web.Application:
    key = secret.encode()

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        expected = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("X-Hub-Signature-256", "")):
            return web.Response(status=401)
        return web.Response(status=202)

    app = web.Application(client_max_size=26 * 1024 * 1024)
    app.router.add_post("/webhooks", receive)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True)
    args = parser.parse_args()
    print(json.dumps({"listening": args.port}), flush=True)
    web.run_app(build(args.secret), host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
