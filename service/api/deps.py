"""Typed dependencies: database, clock, settings, and who is calling with which role.

Authentication is default-deny: ``default_deny`` is an app-wide dependency that rejects every route
not in ``PUBLIC_PATHS`` without a valid token, so a route that forgets its role check is still not
public. Role checks on top are ``Annotated`` aliases (``ReviewerPrincipal`` …).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Annotated, Any, Final

from fastapi import Depends, HTTPException, Query, Request, status
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from service import crud
from service.core.clock import Clock
from service.core.config import Settings
from service.core.db import Database
from service.core.lifecycle import Status
from service.core.security import Principal, Role, csrf_token, same_digest
from zones.alert import AwareDatetime
from zones.categories import Category

SESSION_COOKIE: Final = "streetwatch_session"
CSRF_HEADER: Final = "X-CSRF-Token"
PUBLIC_PATHS: Final[frozenset[str]] = frozenset({"/healthz", "/login", "/logout", "/favicon.ico"})
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})

_bearer = HTTPBearer(auto_error=False, description="Token from `streetwatch token create`.")
_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="Set by the login page.")


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_now(request: Request) -> datetime:
    clock: Clock = request.app.state.clock
    return clock()


def get_session(db: Annotated[Database, Depends(get_db)]) -> Iterator[Session]:
    with db.reading() as session:
        yield session


DbDep = Annotated[Database, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
NowDep = Annotated[datetime, Depends(get_now)]
SessionDep = Annotated[Session, Depends(get_session)]


def _route_path(request: Request) -> str:
    """The route's path template (``/api/v1/cases/{case_id}``), not the concrete URL."""
    route = request.scope.get("route")
    return str(getattr(route, "path", request.url.path))


def _unauthorized(detail: str = "authentication required") -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"})


def get_optional_principal(
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    cookie: Annotated[str | None, Depends(_cookie)],
) -> Principal | None:
    """The caller, from ``Authorization: Bearer`` or the session cookie; None when neither is given."""
    if bearer is not None:
        token, via_cookie = bearer.credentials, False
    elif cookie:
        token, via_cookie = cookie, True
    else:
        return None
    with db.reading() as session:
        principal = crud.principal_for_token(session, token=token)
    if _route_path(request) in PUBLIC_PATHS:
        # Public routes (login, logout) use the caller only as a hint: a stale cookie must not
        # lock anyone out of the login page, and logging out needs no CSRF proof.
        return principal
    if principal is None:
        raise _unauthorized("invalid or revoked token")
    if via_cookie and request.method not in SAFE_METHODS:
        # Cookies ride along on cross-site requests; a header a foreign page cannot set proves intent.
        expected = csrf_token(settings.secret_key, principal.token_sha256)
        if not same_digest(request.headers.get(CSRF_HEADER, ""), expected):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong X-CSRF-Token for cookie session")
    return principal


OptionalPrincipal = Annotated[Principal | None, Depends(get_optional_principal)]


def default_deny(request: Request, principal: OptionalPrincipal) -> None:
    if _route_path(request) not in PUBLIC_PATHS and principal is None:
        raise _unauthorized()


def get_principal(principal: OptionalPrincipal) -> Principal:
    if principal is None:
        raise _unauthorized()
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require_roles(*roles: Role) -> Callable[[Principal], Principal]:
    allowed = frozenset(roles)

    def check(principal: CurrentPrincipal) -> Principal:
        if principal.role not in allowed:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {principal.role} may not use this route")
        return principal

    check.__name__ = "require_" + "_".join(sorted(allowed))
    return check


CAMERA_ROLES: Final[tuple[Role, ...]] = ("camera", "admin")
READER_ROLES: Final[tuple[Role, ...]] = ("operator", "officer", "supervisor", "admin")
REVIEWER_ROLES: Final[tuple[Role, ...]] = ("operator", "supervisor", "admin")
OFFICER_ROLES: Final[tuple[Role, ...]] = ("officer", "supervisor", "admin")
SUPERVISOR_ROLES: Final[tuple[Role, ...]] = ("supervisor", "admin")
ADMIN_ROLES: Final[tuple[Role, ...]] = ("admin",)
UPLOADER_ROLES: Final[tuple[Role, ...]] = ("camera", "officer", "supervisor", "admin")

CameraPrincipal = Annotated[Principal, Depends(require_roles(*CAMERA_ROLES))]
ReaderPrincipal = Annotated[Principal, Depends(require_roles(*READER_ROLES))]
ReviewerPrincipal = Annotated[Principal, Depends(require_roles(*REVIEWER_ROLES))]
OfficerPrincipal = Annotated[Principal, Depends(require_roles(*OFFICER_ROLES))]
SupervisorPrincipal = Annotated[Principal, Depends(require_roles(*SUPERVISOR_ROLES))]
AdminPrincipal = Annotated[Principal, Depends(require_roles(*ADMIN_ROLES))]
UploaderPrincipal = Annotated[Principal, Depends(require_roles(*UPLOADER_ROLES))]

ERROR_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    401: {"description": "No, invalid or revoked token."},
    403: {"description": "The token's role may not do this."},
}


def case_filter(
    status: Annotated[list[Status] | None, Query(description="Repeatable: status=filed&status=dispatched.")] = None,
    category: Annotated[list[Category] | None, Query(description="Repeatable.")] = None,
    camera: Annotated[str | None, Query(max_length=64, description="Camera id.")] = None,
    grid: Annotated[str | None, Query(max_length=64, description="Grid cell code (单元网格).")] = None,
    team: Annotated[str | None, Query(max_length=64, description="Team the case was dispatched to.")] = None,
    since: Annotated[AwareDatetime | None, Query(description="alerted_at ≥ since (ISO 8601 with offset).")] = None,
    until: Annotated[AwareDatetime | None, Query(description="alerted_at < until.")] = None,
    overdue: Annotated[bool | None, Query(description="Only (not) overdue open cases.")] = None,
) -> crud.CaseFilter:
    return crud.CaseFilter(
        status=tuple(status or ()),
        category=tuple(category or ()),
        camera_id=camera,
        grid_code=grid,
        team=team,
        since=since,
        until=until,
        overdue=overdue,
    )


CaseFilterDep = Annotated[crud.CaseFilter, Depends(case_filter)]

MAX_OFFSET = 10**12
"""Upper bound for offsets and sequence numbers in queries: far beyond any real store, and within
the 64-bit integers SQLite and PostgreSQL bind (a larger one was a 500, found by schemathesis)."""
OffsetQuery = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip.")]
"""The ``offset`` parameter of every paginated list."""
