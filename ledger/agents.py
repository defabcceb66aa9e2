"""Agents allowed to lease escalation jobs. Only a SHA-256 hash of each bearer token is kept;
the token itself is shown once, when the agent is added, and never stored or logged."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from sqlalchemy import select

from ledger.db import Ledger
from ledger.models import Agent, table_of

TOKEN_PREFIX = "psa_"


class AgentExists(ValueError):
    """An agent of that name is already registered."""


def hash_token(token: str) -> str:
    """The stored form of a bearer token."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


async def add_agent(db: Ledger, name: str, now: datetime) -> tuple[Agent, str]:
    """Register ``name``; returns the row and its bearer token (the only time it is seen)."""
    token = new_token()
    agents = table_of(Agent)
    async with db.transaction() as session:
        exists = await session.execute(select(agents.c.id).where(agents.c.name == name))
        if exists.scalar_one_or_none() is not None:
            raise AgentExists(f"an agent named {name!r} exists already")
        agent = Agent(name=name, token_hash=hash_token(token), created_at=now)
        session.add(agent)
        await session.flush()
    return agent, token


async def authenticate(db: Ledger, token: str) -> Agent | None:
    """The enabled agent holding ``token``, or None."""
    if not token:
        return None
    wanted = hash_token(token)
    agents = table_of(Agent)
    async with db.transaction() as session:
        agent = (
            await session.execute(select(Agent).where(agents.c.token_hash == wanted))
        ).scalar_one_or_none()
    if agent is None or agent.disabled_at is not None:
        return None
    # The lookup is by hash already; compare again in constant time for good measure.
    return agent if hmac.compare_digest(agent.token_hash, wanted) else None


async def list_agents(db: Ledger) -> list[Agent]:
    async with db.transaction() as session:
        return list(
            (await session.execute(select(Agent).order_by(table_of(Agent).c.id))).scalars().all()
        )


async def disable_agent(db: Ledger, name: str, now: datetime) -> bool:
    agents = table_of(Agent)
    async with db.transaction() as session:
        agent = (
            await session.execute(select(Agent).where(agents.c.name == name))
        ).scalar_one_or_none()
        if agent is None:
            return False
        agent.disabled_at = now
    return True


async def ensure_internal_agent(db: Ledger, name: str, now: datetime) -> Agent:
    """An agent row for prsteward's own deliveries (push, command). Its token is thrown away at
    once, so nobody can use it on the pull API."""
    agents = table_of(Agent)
    async with db.transaction() as session:
        found = (
            await session.execute(select(Agent).where(agents.c.name == name))
        ).scalar_one_or_none()
        if found is not None:
            return found
        agent = Agent(name=name, token_hash=hash_token(new_token()), created_at=now)
        session.add(agent)
        await session.flush()
        return agent
