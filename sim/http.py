"""HTTP plumbing shared by the sim's REST and GraphQL handlers: authentication, GitHub-shaped
errors, ETag / Last-Modified with 304, ``Link`` pagination."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

import jwt
from aiohttp import web

from sim.core import CachedAnswer, Simulator

DOCS = "https://docs.github.com/rest"
SIM_KEY: web.AppKey[Simulator] = web.AppKey("simulator", Simulator)


@dataclass(slots=True, frozen=True)
class Principal:
    """Who is calling: the App (JWT), an installation (token), or nobody."""

    kind: str  # "app" | "installation" | "anonymous"
    app_id: int | None = None
    installation_id: int | None = None
    token: str = ""
    # "installation:N" | "app:N" | "anonymous": what limits and accounting are kept by
    key: str = field(init=False, compare=False, default="")

    def __post_init__(self) -> None:
        if self.kind == "installation":
            key = f"installation:{self.installation_id}"
        elif self.kind == "app":
            key = f"app:{self.app_id}"
        else:
            key = "anonymous"
        object.__setattr__(self, "key", key)


PRINCIPAL_KEY: web.RequestKey[Principal] = web.RequestKey("principal", Principal)


class GitHubError(Exception):
    """An error answered in GitHub's shape: ``{"message", "documentation_url", ...}``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        documentation_url: str = DOCS,
    ) -> None:
        super().__init__(message)
        self.status_code = status
        self.body: dict[str, Any] = {"message": message, "documentation_url": documentation_url}
        if errors is not None:
            self.body["errors"] = errors
        self.body["status"] = str(status)
        self.headers = dict(headers or {})


def not_found() -> GitHubError:
    return GitHubError(404, "Not Found")


def validation_failed(resource: str, field: str, code: str = "invalid") -> GitHubError:
    return GitHubError(
        422,
        "Validation Failed",
        errors=[{"resource": resource, "field": field, "code": code}],
    )


def authenticate(sim: Simulator, request: web.Request) -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, credential = header.partition(" ")
    if not credential or scheme.lower() not in {"bearer", "token"}:
        return Principal("anonymous")
    token = sim.state.tokens.get(credential)
    if token is not None:
        if sim.options.enforce_token_expiry and token.expires_at <= sim.clock.now():
            raise GitHubError(401, "Bad credentials")
        return Principal("installation", installation_id=token.installation_id, token=credential)
    return Principal("app", app_id=check_app_jwt(sim, credential), token=credential)


def check_app_jwt(sim: Simulator, credential: str) -> int:
    """RS256 against the App's public key; ``iss`` names the App. Times are real (the client's
    wall clock signs them), unlike everything else in the sim."""
    try:
        claims = jwt.decode(credential, options={"verify_signature": False})
        app = sim.state.apps.get(int(claims.get("iss", 0)))
    except (jwt.PyJWTError, ValueError, TypeError) as error:
        raise GitHubError(401, "A JSON web token could not be decoded") from error
    if app is None:
        raise GitHubError(401, "Integration not found")
    try:
        verified = jwt.decode(
            credential,
            app.public_key_pem,
            algorithms=["RS256"],
            options={"require": ["iat", "exp", "iss"]},
            leeway=60,
        )
    except jwt.ExpiredSignatureError as error:
        raise GitHubError(
            401,
            "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires",
        ) from error
    except jwt.PyJWTError as error:
        raise GitHubError(401, "A JSON web token could not be decoded") from error
    if int(verified["exp"]) - int(verified["iat"]) > 660:
        raise GitHubError(401, "'Expiration time' claim ('exp') is too far in the future")
    return app.id


def http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def etag_for(salt: bytes, digest: bytes) -> str:
    """A weak ETag over the body's digest, salted with the token (GitHub's are per token)."""
    return 'W/"' + hashlib.sha256(salt + digest).hexdigest()[:40] + '"'


def cached_entry(
    body: bytes, last_modified: datetime | None, link: str | None = None
) -> CachedAnswer:
    return CachedAnswer(
        body=body,
        digest=hashlib.sha256(body).digest(),
        last_modified=last_modified,
        last_modified_http=http_date(last_modified) if last_modified is not None else None,
        link=link,
    )


def json_response(
    request: web.Request,
    data: Any,
    *,
    status: int = 200,
    last_modified: datetime | None = None,
    link: str | None = None,
    body: bytes | None = None,
    cached: CachedAnswer | None = None,
) -> web.Response:
    """A JSON answer (``data``, ``body`` already serialised, or a ``cached`` answer); GETs carry
    ETag (and Last-Modified) and answer 304 when they match."""
    if cached is not None:
        body, last_modified, link = cached.body, cached.last_modified, cached.link
    elif body is None:
        body = json.dumps(data, separators=(",", ":")).encode()
    headers: dict[str, str] = {}
    if link:
        headers["Link"] = link
    if request.method == "GET" and status == 200:
        sim = request.app[SIM_KEY]
        token = request[PRINCIPAL_KEY].token if sim.options.etag_per_token else ""
        if cached is not None:
            etag = cached.etags.get(token)
            if etag is None:
                if len(cached.etags) >= 64:
                    cached.etags.clear()
                etag = cached.etags[token] = etag_for(token.encode(), cached.digest)
            modified = cached.last_modified_http
        else:
            etag = etag_for(token.encode(), hashlib.sha256(body).digest())
            modified = http_date(last_modified) if last_modified is not None else None
        headers["ETag"] = etag
        if modified is not None:
            headers["Last-Modified"] = modified
        if matches_conditional(request, etag, last_modified):
            return web.Response(status=304, headers=headers)
    return web.Response(body=body, status=status, content_type="application/json", headers=headers)


def matches_conditional(request: web.Request, etag: str, last_modified: datetime | None) -> bool:
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        wanted = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return etag.removeprefix("W/") in wanted or "*" in wanted
    if_modified_since = request.headers.get("If-Modified-Since")
    if if_modified_since and last_modified is not None:
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
        return last_modified.replace(microsecond=0) <= since
    return False


def page_params(request: web.Request, default: int = 30) -> tuple[int, int]:
    try:
        per_page = int(request.query.get("per_page", default))
        page = int(request.query.get("page", 1))
    except ValueError as error:
        raise validation_failed("Query", "per_page") from error
    return max(1, min(per_page, 100)), max(1, page)


def paginate(
    request: web.Request, items: list[Any], default: int = 30
) -> tuple[list[Any], str | None]:
    """One page of ``items`` and GitHub's ``Link`` header (next, last, first, prev)."""
    per_page, page = page_params(request, default)
    last = max(1, -(-len(items) // per_page))
    chunk = items[(page - 1) * per_page : page * per_page]

    def url(number: int) -> str:
        query = dict(request.query)
        query["per_page"] = str(per_page)
        query["page"] = str(number)
        return f"{request.app[SIM_KEY].base_url}{request.path}?{urlencode(query)}"

    links = []
    if page < last:
        links += [f'<{url(page + 1)}>; rel="next"', f'<{url(last)}>; rel="last"']
    if page > 1:
        links += [f'<{url(1)}>; rel="first"', f'<{url(page - 1)}>; rel="prev"']
    return chunk, ", ".join(links) or None


async def read_json(request: web.Request) -> dict[str, Any]:
    if not request.body_exists:  # (not can_read_body: false once the body was read and cached)
        return {}
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise GitHubError(400, "Problems parsing JSON") from error
    if not isinstance(data, dict):
        raise GitHubError(400, "Problems parsing JSON")
    return data
