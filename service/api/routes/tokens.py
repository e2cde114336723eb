"""API tokens (admin) and the caller's own identity."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from service import crud
from service.api.access import AccessLogDep
from service.api.deps import ERROR_RESPONSES, AdminPrincipal, CurrentPrincipal, DbDep, NowDep, SessionDep
from service.schemas import ErrorOut, TokenCreate, TokenCreated, TokenList, TokenPublic, WhoAmI

router = APIRouter(prefix="/api/v1", tags=["tokens"])


@router.get("/whoami", response_model=WhoAmI, responses=ERROR_RESPONSES, summary="Who the token belongs to")
def whoami(principal: CurrentPrincipal) -> WhoAmI:
    return WhoAmI(name=principal.name, role=principal.role, team=principal.team)


@router.get("/tokens", response_model=TokenList, responses=ERROR_RESPONSES, summary="List tokens (no secrets)")
def list_tokens(principal: AdminPrincipal, session: SessionDep) -> TokenList:
    return TokenList(items=[TokenPublic.model_validate(row) for row in crud.list_tokens(session)])


@router.post(
    "/tokens",
    status_code=201,
    response_model=TokenCreated,
    responses={**ERROR_RESPONSES, 422: {"model": ErrorOut}},
    summary="Create a token; the answer is the only place it is shown",
)
def create_token(
    body: TokenCreate, principal: AdminPrincipal, db: DbDep, now: NowDep, access: AccessLogDep
) -> TokenCreated:
    with db.writing() as session:
        row, token = crud.create_token(session, role=body.role, name=body.name, team=body.team, now=now)
        access.add(session, principal, "token.create", f"token/{row.id}", detail=f"{row.role} {row.name}")
        return TokenCreated(**TokenPublic.model_validate(row).model_dump(), token=token)


@router.delete(
    "/tokens/{token_id}",
    response_model=TokenPublic,
    responses={**ERROR_RESPONSES, 404: {"model": ErrorOut}},
    summary="Revoke a token (takes effect on its next request)",
)
def revoke_token(
    token_id: Annotated[str, Path(max_length=36)],
    principal: AdminPrincipal,
    db: DbDep,
    now: NowDep,
    access: AccessLogDep,
) -> TokenPublic:
    with db.writing() as session:
        row = crud.revoke_token(session, token_id=token_id, now=now)
        access.add(session, principal, "token.revoke", f"token/{row.id}", detail=f"{row.role} {row.name}")
        return TokenPublic.model_validate(row)
