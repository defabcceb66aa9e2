"""Per-repository config from GitHub: ``.github/prsteward.yml`` over the org default.

The org default is ``.github/prsteward.yml`` in the organisation's ``.github`` repository. Both
are read through the contents API with conditional requests (the ETag / Last-Modified of the
last answer, kept per process; a 304 costs nothing on GitHub); a 404 means "no file: defaults".

The result is parsed with :func:`policies.config.parse_config` (the repository file over the org
file over the built-in defaults, whose ``mode`` is ``shadow``: a new installation only watches).
A valid config is stored on the repository row and is in force; a refused one is stored next to
it as text with line numbers and recorded once as a ``config`` decision, and the last valid
config stays in force (the layers that parse are used only when there never was a valid one).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from bot.github import GitHubApp, GitHubError, InstallationClient
from ledger import decisions
from ledger.db import Ledger
from ledger.models import Repository
from ledger.repositories import get_repository
from policies.config import (
    CONFIG_PATH,
    DEFAULT_CONFIG,
    Config,
    ConfigError,
    effective_config,
    parse_config,
)

log = logging.getLogger("prsteward.config")

ORG_REPOSITORY = ".github"
ORG_SOURCE = "org .github/prsteward.yml"
REFRESH_INTERVAL = timedelta(minutes=10)


def utcnow() -> datetime:
    return datetime.now(UTC)


def stored_config(row: Repository | None) -> Config:
    """The config in force for a repository row: its last valid config, else the defaults."""
    if row is None or not row.config:
        return DEFAULT_CONFIG
    try:
        return Config.model_validate(row.config)
    except ValidationError:
        log.warning("%s: stored config no longer validates; using defaults", row.full_name)
        return DEFAULT_CONFIG


def config_json(config: Config) -> dict[str, Any]:
    return config.model_dump(by_alias=True, mode="json")


@dataclass(slots=True)
class _Cached:
    etag: str | None
    last_modified: str | None
    text: str | None
    sha: str | None


@dataclass(frozen=True, slots=True)
class FileRead:
    text: str | None  # None: no such file
    sha: str | None
    from_cache: bool = False


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What one refresh found. ``config`` is what is in force now."""

    repository: str
    config: Config
    errors: tuple[ConfigError, ...] = ()
    error_text: str | None = None
    new_error: bool = False  # recorded (and to be reported) for the first time
    changed: bool = False  # a different valid config was stored


@dataclass
class ConfigLoader:
    app: GitHubApp
    db: Ledger
    clock: Callable[[], datetime] = utcnow
    interval: timedelta = REFRESH_INTERVAL
    _cache: dict[tuple[int, str, str], _Cached] = field(default_factory=dict)
    _refreshed: dict[str, datetime] = field(default_factory=dict)

    def due(self, row: Repository, now: datetime) -> bool:
        """Never loaded in this process, or longer ago than ``interval``."""
        last = self._refreshed.get(row.full_name)
        return last is None or now - last >= self.interval

    async def read_file(self, client: InstallationClient, repository: str, path: str) -> FileRead:
        """One conditional contents read; 404 -> no file. Other errors raise GitHubError."""
        cache_key = (client.installation_id, repository, path)
        cached = self._cache.get(cache_key)
        headers: dict[str, str] = {}
        if cached is not None and cached.etag:
            headers["If-None-Match"] = cached.etag
        if cached is not None and cached.last_modified:
            headers["If-Modified-Since"] = cached.last_modified
        response = await client.request(
            "GET", f"/repos/{repository}/contents/{path}", headers=headers
        )
        if response.status_code == 304 and cached is not None:
            return FileRead(cached.text, cached.sha, from_cache=True)
        if response.status_code == 404:
            self._cache.pop(cache_key, None)
            return FileRead(None, None)
        if response.status_code >= 400:
            raise GitHubError(
                f"GET {repository}/{path}: HTTP {response.status_code}",
                status=response.status_code,
            )
        payload = response.json()
        text = _decode(payload)
        sha = payload.get("sha") if isinstance(payload, dict) else None
        self._cache[cache_key] = _Cached(
            response.headers.get("etag"),
            response.headers.get("last-modified"),
            text,
            sha if isinstance(sha, str) else None,
        )
        return FileRead(text, sha if isinstance(sha, str) else None)

    async def refresh(self, repository: str, now: datetime | None = None) -> LoadResult:
        """Read both files, parse, and store the outcome on the repository row. GitHub trouble
        leaves the stored config as it is (and raises GitHubError)."""
        now = now or self.clock()
        row = await get_repository(self.db, repository)
        if row is None or row.installation_id is None:
            return LoadResult(repository, stored_config(row))
        client = self.app.installation(row.installation_id)
        owner = repository.split("/", 1)[0]
        org = await self.read_file(client, f"{owner}/{ORG_REPOSITORY}", CONFIG_PATH)
        own = await self.read_file(client, repository, CONFIG_PATH)
        self._refreshed[repository] = now
        return await self._store(row, org, own, now)

    async def _store(
        self, row: Repository, org: FileRead, own: FileRead, now: datetime
    ) -> LoadResult:
        errors: list[ConfigError] = []
        base = DEFAULT_CONFIG
        if org.text is not None:
            parsed = parse_config(org.text, DEFAULT_CONFIG, ORG_SOURCE)
            if isinstance(parsed, ConfigError):
                errors.append(parsed)
            else:
                base = parsed
        config = base
        if own.text is not None:
            parsed = parse_config(own.text, base, CONFIG_PATH)
            if isinstance(parsed, ConfigError):
                errors.append(parsed)
            else:
                config = parsed
        if not errors:
            sha = _combined_sha(org.sha, own.sha)
            changed = await decisions.record_config_loaded(
                self.db, row.full_name, config_json(config), sha, now
            )
            return LoadResult(row.full_name, config, changed=changed)
        text = "\n".join(error.render_text() for error in errors)
        new_error = await decisions.record_config_error(self.db, row.full_name, text, now)
        if new_error:
            log.warning("%s: config refused, last valid config stays:\n%s", row.full_name, text)
        in_force = (
            stored_config(row)
            if row.config
            else effective_config(org.text, own.text)[0]  # never valid: the layers that parse
        )
        return LoadResult(
            row.full_name, in_force, tuple(errors), error_text=text, new_error=new_error
        )

    async def config_for(self, row: Repository, now: datetime | None = None) -> Config:
        """The config in force, refreshing from GitHub when due (GitHub trouble: the stored one)."""
        now = now or self.clock()
        if not self.due(row, now):
            return stored_config(row)
        try:
            return (await self.refresh(row.full_name, now)).config
        except GitHubError as error:
            self._refreshed[row.full_name] = now  # do not hammer: try again after the interval
            log.warning(
                "%s: reading the config failed (%s); keeping the stored one", row.full_name, error
            )
            return stored_config(row)


def _decode(payload: Any) -> str | None:
    if not isinstance(payload, dict) or payload.get("type", "file") != "file":
        return None
    content = payload.get("content")
    if not isinstance(content, str):
        return None
    try:
        return base64.b64decode(content).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def _combined_sha(org_sha: str | None, own_sha: str | None) -> str | None:
    if org_sha is None and own_sha is None:
        return None
    if org_sha is None:
        return own_sha
    joined = f"{org_sha}:{own_sha or '-'}"
    return hashlib.sha1(joined.encode(), usedforsecurity=False).hexdigest()
