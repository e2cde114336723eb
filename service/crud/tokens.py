"""API tokens: create, look up, list, revoke."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.core.errors import Invalid, NotFound
from service.core.security import Principal, Role, hash_token, new_token, same_digest
from service.crud.common import _new_id
from service.models import ApiToken

# ---- tokens ---------------------------------------------------------------------------------------


def create_token(session: Session, *, role: Role, name: str, team: str | None, now: datetime) -> tuple[ApiToken, str]:
    if role == "officer" and not team:
        raise Invalid("officer tokens need a team (--team)")
    token = new_token()
    row = ApiToken(id=_new_id(), name=name, role=role, team=team, token_sha256=hash_token(token), created_at=now)
    session.add(row)
    session.flush()
    return row, token


def principal_for_token(session: Session, *, token: str) -> Principal | None:
    digest = hash_token(token)
    row = session.scalar(select(ApiToken).where(ApiToken.token_sha256 == digest))
    if row is None or row.revoked_at is not None or not same_digest(row.token_sha256, digest):
        return None
    return Principal(
        token_id=row.id,
        name=row.name,
        role=row.role,  # type: ignore[arg-type]
        team=row.team,
        token_sha256=row.token_sha256,
    )


def list_tokens(session: Session) -> Sequence[ApiToken]:
    return session.scalars(select(ApiToken).order_by(ApiToken.created_at, ApiToken.id)).all()


def revoke_token(session: Session, *, token_id: str, now: datetime) -> ApiToken:
    row = session.get(ApiToken, token_id)
    if row is None:
        raise NotFound(f"no token {token_id}")
    if row.revoked_at is None:
        row.revoked_at = now
    return row


def revoke_tokens_named(session: Session, *, name: str, now: datetime) -> int:
    rows = session.scalars(select(ApiToken).where(ApiToken.name == name, ApiToken.revoked_at.is_(None))).all()
    for row in rows:
        row.revoked_at = now
    return len(rows)
