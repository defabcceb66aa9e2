"""Starting the sim: in-process for tests (``SimServer``, an async context manager on a free port)
or as the ``prsteward sim`` process (``serve_forever``). Makes an App key pair when none is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sim.core import Simulator
from sim.scenario import load
from sim.server import build_app
from sim.state import SimClock

DEFAULT_APP_ID = 100001
DEFAULT_INSTALLATION = {"id": 1, "account": "acme", "repositories": [{"name": "widgets"}]}


def generate_private_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def public_key_pem(private_pem: str) -> str:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@dataclass(slots=True)
class SimConfig:
    scenario: dict[str, Any] = field(default_factory=dict)
    app_id: int = DEFAULT_APP_ID
    private_key_pem: str | None = None
    webhook_secret: str | None = None
    webhook_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 0


_SCENARIOS: dict[int, dict[str, Any]] = {}  # id(sim) -> the scenario it was built from


def build_simulator(config: SimConfig) -> tuple[Simulator, str]:
    """A loaded simulator and the App's private key PEM."""
    private_pem = config.private_key_pem or generate_private_key_pem()
    secret = config.webhook_secret or secrets.token_hex(20)
    # Without a scenario clock the sim starts at wall-clock time: installation tokens then expire
    # when clients (githubkit caches them by real time) expect.
    sim = Simulator(clock=SimClock(datetime.now(UTC)))
    app_spec = config.scenario.get("app") or {}
    sim.add_app(
        int(app_spec.get("id", config.app_id)),
        public_key_pem(private_pem),
        secret,
        slug=str(app_spec.get("slug", "prsteward")),
    )
    sim.webhooks.config.url = config.webhook_url
    sim.webhooks.config.secret = secret
    scenario = config.scenario or {"installations": [DEFAULT_INSTALLATION]}
    load(sim, scenario)
    if config.webhook_url:
        sim.webhooks.config.url = config.webhook_url  # the command line wins over the scenario
    _SCENARIOS[id(sim)] = scenario
    return sim, private_pem


def rebuild_state(sim: Simulator) -> None:
    """Back to the scenario the sim started from (keeps the App, clock and webhook settings)."""
    from sim.state import SimState

    scenario = _SCENARIOS.get(id(sim), {})
    apps = sim.state.apps
    fresh = SimState(sim.state.clock)
    fresh.apps = apps
    for app in apps.values():
        fresh.user(f"{app.slug}[bot]", "Bot")
    sim.state = fresh
    sim.set_base_url(sim.base_url)  # new renderer, empty answer cache
    load(sim, {k: v for k, v in scenario.items() if k not in {"clock", "webhook"}})


class SimServer:
    """An in-process sim on a free port::

    async with SimServer(SimConfig(scenario=...)) as server:
        server.base_url, server.app_id, server.private_key_pem, server.webhook_secret
        await server.control.advance("30d")
    """

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        self.sim, self.private_key_pem = build_simulator(self.config)
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        from sim.control import SimControl

        self.control: SimControl = SimControl("http://unset")

    @property
    def app_id(self) -> int:
        return self.sim.app.id

    @property
    def webhook_secret(self) -> str:
        return self.sim.webhooks.config.secret

    @property
    def installation_ids(self) -> list[int]:
        return sorted(self.sim.state.installations)

    def set_webhook_url(self, url: str | None) -> None:
        self.sim.webhooks.config.url = url

    async def start(self) -> SimServer:
        from sim.control import SimControl

        self._runner = web.AppRunner(build_app(self.sim), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        port = self.config.port
        for address in self._runner.addresses:  # the port the OS picked when asked for 0
            port = int(address[1])
        self.base_url = f"http://{self.config.host}:{port}"
        self.sim.set_base_url(self.base_url)
        self.control = SimControl(self.base_url)
        return self

    async def stop(self) -> None:
        await self.control.aclose()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SimServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def credentials_env(self, private_key_path: Path) -> str:
        return credentials_env(self.app_id, private_key_path, self.webhook_secret, self.base_url)


def credentials_env(app_id: int, private_key_path: Path, webhook_secret: str, api_url: str) -> str:
    """``PRSTEWARD_*=`` lines that ``prsteward serve`` and ``reconcile`` read as they are."""
    return (
        f"PRSTEWARD_APP_ID={app_id}\n"
        f"PRSTEWARD_PRIVATE_KEY_PATH={private_key_path}\n"
        f"PRSTEWARD_WEBHOOK_SECRET={webhook_secret}\n"
        f"PRSTEWARD_GITHUB_API_URL={api_url}\n"
    )


def run_cli(
    *,
    port: int,
    host: str,
    scenario: Path | None,
    generate: str | None,
    webhook_url: str | None,
    webhook_secret: str | None,
    app_id: int | None,
    private_key_path: Path | None,
    credentials_out: Path,
) -> None:
    """``prsteward sim``: load, write credentials when the key was made here, serve until ^C."""
    import sys
    import time

    from sim.generate import GenerateSpec
    from sim.generate import generate as generate_scenario
    from sim.scenario import ScenarioError, read_scenario

    if scenario is not None and generate is not None:
        sys.exit("prsteward sim: give --scenario or --generate, not both")
    started = time.monotonic()
    try:
        if scenario is not None:
            spec = read_scenario(scenario)
        elif generate is not None:
            spec = generate_scenario(GenerateSpec.parse(generate))
        else:
            spec = {}
        private_pem = private_key_path.read_text() if private_key_path else None
        config = SimConfig(
            scenario=spec,
            app_id=app_id or DEFAULT_APP_ID,
            private_key_pem=private_pem,
            webhook_secret=webhook_secret,
            webhook_url=webhook_url,
            host=host,
            port=port,
        )
        server = SimServer(config)
    except (OSError, ValueError, ScenarioError) as error:
        sys.exit(f"prsteward sim: {error}")
    loaded = time.monotonic() - started
    key_path = private_key_path
    if key_path is None:
        key_path = credentials_out.resolve().with_name("sim-private-key.pem")
        key_path.write_text(server.private_key_pem)
        key_path.chmod(0o600)
    api_url = f"http://{host}:{port}"
    if private_key_path is None:
        credentials_out.write_text(
            credentials_env(server.app_id, key_path.resolve(), server.webhook_secret, api_url)
        )
        print(f"credentials: {credentials_out}", flush=True)  # noqa: T201 - CLI output
    pulls = sum(len(r.pulls) for r in server.sim.state.repos.values())
    print(  # noqa: T201 - CLI output
        f"sim: {len(server.sim.state.repos)} repositories, {pulls} pull requests loaded in {loaded:.2f}s; "
        f"serving {api_url} (GraphQL {api_url}/graphql, control {api_url}/_sim/); "
        f"webhooks -> {webhook_url or '(none: set with PUT /_sim/webhook)'}",
        flush=True,
    )

    async def main() -> None:
        await server.start()
        try:
            await asyncio.Event().wait()
        finally:
            await server.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
