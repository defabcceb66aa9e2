"""Process settings, read once from the environment (prefix ``PRSTEWARD_``) and an optional ``.env``.

Build one ``Settings`` with :func:`load_settings` in the CLI and pass it down; nothing reads the
environment at import time.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NoReturn

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "PRSTEWARD_"
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./prsteward.db"


class Settings(BaseSettings):
    """Everything the process needs to know about its surroundings."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL of the ledger. SQLite (default) for one process; "
        "postgresql://... for several replicas.",
    )
    app_id: int | None = Field(None, description="The GitHub App's numeric id.")
    private_key_path: Path | None = Field(None, description="Path to the App's PEM private key.")
    private_key: SecretStr | None = Field(
        None, description="The App's PEM private key itself (instead of a path)."
    )
    webhook_secret: SecretStr | None = Field(None, description="The App's webhook secret.")
    insecure_no_webhook_secret: bool = Field(
        False, description="Accept unsigned webhooks. Never in production."
    )
    github_api_url: str = Field(
        "https://api.github.com", description="REST root; GraphQL is served at {url}/graphql."
    )
    host: str = Field("127.0.0.1", description="Address `prsteward serve` binds to.")
    port: int = Field(8080, ge=1, le=65535, description="Port `prsteward serve` binds to.")
    request_timeout_seconds: float = Field(
        20.0, gt=0, le=300, description="Timeout of every GitHub request."
    )
    log_level: str = Field("INFO", description="Python logging level.")
    # --- watching (issue 4) ---
    repository_allowlist: str = Field(
        "", description="Comma-separated owner/name globs to watch (empty: every repository)."
    )
    repository_ignorelist: str = Field(
        "", description="Comma-separated owner/name globs never to watch (wins over the allowlist)."
    )
    poll_interval_seconds: float = Field(
        60.0, gt=0, description="Seconds between reconcile cycles (cheap check + dirty PRs)."
    )
    full_sweep_interval_seconds: float = Field(
        3600.0, gt=0, description="Seconds between full sweeps of a repository."
    )
    webhook_workers: int = Field(2, ge=1, le=32, description="Inbox workers per process.")
    # --- nothing missed while down (issue 13, docs/recovery.md) ---
    recovery_interval_seconds: float = Field(
        300.0,
        gt=0,
        description="Seconds between missed-delivery recovery passes on the poller leader (one "
        "also runs when it starts leading): the longest a failed webhook delivery waits to be "
        "asked for again.",
    )
    recovery_pace_seconds: float = Field(
        0.1,
        ge=0,
        le=60,
        description="Seconds between two redelivery requests of a recovery pass (also the default "
        "of `prsteward deliveries recover --pace`): 500 missed deliveries take 50 s at 0.1.",
    )
    typed_webhook_parse: bool = Field(
        False,
        description="Also parse deliveries with githubkit's typed models (raw dict fallback). "
        "Off by default: measured 30-200 ms of CPU per pull_request/check_run delivery.",
    )
    # --- maintainer view (issue 7) ---
    dashboard_token: SecretStr | None = Field(
        None,
        description="Token for the dashboard and /metrics (bearer, ?token= once, or basic auth "
        "password). Required when `host` is not a loopback address; without it they answer 403 "
        "there.",
    )

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql", "postgres")):
            raise ValueError("a sqlite:/// or postgresql:// URL")
        return value

    @field_validator("github_api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        upper = value.upper()
        if upper not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return upper

    def private_key_pem(self) -> str | None:
        """The App's private key text, from the value or the file; None when neither is set."""
        if self.private_key is not None:
            return self.private_key.get_secret_value()
        if self.private_key_path is not None:
            return self.private_key_path.read_text()
        return None


def describe_validation_error(error: ValidationError) -> list[str]:
    """One readable line per bad setting, naming the environment variable and what was expected."""
    lines = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "?"
        variable = ENV_PREFIX + field.upper()
        message = item["msg"]
        if message.startswith("Value error, "):
            message = "expected " + message.removeprefix("Value error, ")
        given = item.get("input")
        shown = f" (got {given!r})" if isinstance(given, str | int | float) and given != "" else ""
        lines.append(f"{variable}: {message}{shown}")
    return lines


def load_settings(**overrides: Any) -> Settings:
    """Read the settings or stop the program with one clear line per bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        fail(
            "\n".join("prsteward: bad setting " + line for line in describe_validation_error(error))
        )


def fail(message: str) -> NoReturn:
    """Stop the program with a message and exit status 2, without a traceback."""
    print(message, file=sys.stderr)  # noqa: T201 - the CLI's last word to the user
    raise SystemExit(2)
