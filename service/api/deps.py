"""Typed dependencies: database, clock, settings, and who is calling with which role.

Dependencies that do no blocking I/O are ``async def``: FastAPI runs each plain ``def`` dependency in
its thread pool, and a dozen thread hops per request cost more than the request on a busy machine.

Authentication is default-deny: ``default_deny`` is an app-wide dependency that rejects every route
not in ``PUBLIC_PATHS`` without a valid token, so a route that forgets its role check is still not
public. Role checks on top are ``Annotated`` aliases (``ReviewerPrincipal`` …).
"""

from __future__ import annotations

import json
import typing
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from typing import Annotated, Any, Final

from fastapi import Depends, HTTPException, Query, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from service import crud
from service.core.clock import Clock
from service.core.config import Settings
from service.core.db import Database
from service.core.lifecycle import Mark, Status
from service.core.security import Principal, Role, csrf_token, same_digest
from service.core.throttle import AuthThrottle
from service.schemas import IsoDatetime
from zones.categories import Category

SESSION_COOKIE: Final = "streetwatch_session"
CSRF_HEADER: Final = "X-CSRF-Token"
PUBLIC_PATHS: Final[frozenset[str]] = frozenset({"/healthz", "/login", "/logout", "/favicon.ico"})
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})

_bearer = HTTPBearer(auto_error=False, description="Token from `streetwatch token create`.")
_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="Set by the login page.")


async def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_now(request: Request) -> datetime:
    clock: Clock = request.app.state.clock
    return clock()


def get_session(db: Annotated[Database, Depends(get_db)]) -> Iterator[Session]:
    with db.reading() as session:
        yield session


DbDep = Annotated[Database, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
NowDep = Annotated[datetime, Depends(get_now)]
SessionDep = Annotated[Session, Depends(get_session)]


def get_throttle(request: Request) -> AuthThrottle:
    throttle: AuthThrottle = request.app.state.auth_throttle
    return throttle


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


def refuse_if_throttled(request: Request, throttle: AuthThrottle) -> None:
    retry_after = throttle.retry_after_s(client_address(request))
    if retry_after is not None:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"too many failed authentications from this address; retry in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )


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
    public = _route_path(request) in PUBLIC_PATHS
    throttle = get_throttle(request)
    if not public:
        # Refused before the lookup: a blocked address learns nothing, so its guesses stay bounded.
        refuse_if_throttled(request, throttle)
    with db.reading() as session:
        principal = crud.principal_for_token(session, token=token)
    if public:
        # Public routes (login, logout) use the caller only as a hint: a stale cookie must not
        # lock anyone out of the login page, and logging out needs no CSRF proof.
        return principal
    if principal is None:
        throttle.record_failure(client_address(request))
        raise _unauthorized("invalid or revoked token")
    if via_cookie and request.method not in SAFE_METHODS:
        # Cookies ride along on cross-site requests; a header a foreign page cannot set proves intent.
        expected = csrf_token(settings.secret_key, principal.token_sha256)
        if not same_digest(request.headers.get(CSRF_HEADER, ""), expected):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong X-CSRF-Token for cookie session")
    return principal


OptionalPrincipal = Annotated[Principal | None, Depends(get_optional_principal)]


async def default_deny(request: Request, principal: OptionalPrincipal) -> None:
    if _route_path(request) not in PUBLIC_PATHS and principal is None:
        raise _unauthorized()


_NUL_MESSAGE: Final = "NUL characters are not allowed in text"


def _nul_locations(value: Any, loc: tuple[str | int, ...]) -> list[tuple[str | int, ...]]:
    """Where a JSON-shaped value holds a NUL, in keys or strings (iterative: bodies nest deeply)."""
    found = []
    stack = [(value, loc)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                found.append(where)
        elif isinstance(item, dict):
            for key, child in item.items():
                if "\x00" in key:
                    found.append((*where, key))
                stack.append((child, (*where, key)))
        elif isinstance(item, list):
            stack.extend((child, (*where, index)) for index, child in enumerate(item))
    return found


def _is_json(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


async def refuse_unstorable_text(request: Request) -> None:
    """No text a request carries (path, query, JSON body) may contain NUL: PostgreSQL cannot store or
    even compare it, so a NUL in a name, a filter or an id was a 500 there (SQLite took it). One check at
    the door covers every route, present and future, including the alert record whose schema lives in
    ``zones``; the OpenAPI description says so, as no JSON Schema keyword can."""
    problems: list[tuple[str | int, ...]] = [
        ("path", name) for name, value in request.path_params.items() if "\x00" in str(value)
    ]
    problems += [("query", name) for name, value in request.query_params.multi_items() if "\x00" in name + value]
    if _is_json(request.headers.get("content-type", "")):
        try:
            body = json.loads(await request.body())
        except (ValueError, RecursionError):
            body = None  # not JSON: FastAPI's own parsing answers that
        problems += _nul_locations(body, ("body",))
    if problems:
        raise RequestValidationError(
            [{"loc": loc, "msg": _NUL_MESSAGE, "type": "string_unstorable"} for loc in problems]
        )


def _repeatable(annotation: Any) -> bool:
    """Whether a query parameter is declared as a list (``list[X] | None`` included)."""
    if typing.get_origin(annotation) in (list, tuple, set, frozenset):
        return True
    return any(_repeatable(arg) for arg in typing.get_args(annotation) if arg is not type(None))


async def refuse_repeated_scalar_query(request: Request) -> None:
    """``?endpoint=a&endpoint=b`` for a one-value parameter is refused (422), not silently cut to the last
    value: the caller meant something the route cannot do (found by schemathesis)."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    repeatable: set[str] = set()
    pending = [dependant]
    while pending:  # the route's own parameters and those of every dependency it uses
        current = pending.pop()
        repeatable |= {f.alias for f in current.query_params if _repeatable(f.field_info.annotation)}
        pending += current.dependencies
    keys = [key for key, _ in request.query_params.multi_items()]
    repeated = sorted({key for key in keys if keys.count(key) > 1} - repeatable)
    if repeated:
        raise RequestValidationError(
            [
                {"loc": ("query", key), "msg": "given more than once; it takes one value", "type": "repeated"}
                for key in repeated
            ]
        )


async def get_principal(principal: OptionalPrincipal) -> Principal:
    if principal is None:
        raise _unauthorized()
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require_roles(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    allowed = frozenset(roles)

    async def check(principal: CurrentPrincipal) -> Principal:
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
    429: {
        "description": "Too many failed authentications from this address (default 10 in 60 s).",
        "headers": {"Retry-After": {"description": "Seconds until it may try again.", "schema": {"type": "integer"}}},
    },
}


async def case_filter(
    status: Annotated[list[Status] | None, Query(description="Repeatable: status=filed&status=dispatched.")] = None,
    category: Annotated[list[Category] | None, Query(description="Repeatable.")] = None,
    camera: Annotated[str | None, Query(max_length=64, description="Camera id.")] = None,
    grid: Annotated[str | None, Query(max_length=64, description="Grid cell code (单元网格).")] = None,
    team: Annotated[str | None, Query(max_length=64, description="Team the case was dispatched to.")] = None,
    since: Annotated[IsoDatetime | None, Query(description="alerted_at ≥ since (ISO 8601 with offset).")] = None,
    until: Annotated[IsoDatetime | None, Query(description="alerted_at < until.")] = None,
    overdue: Annotated[bool | None, Query(description="Only (not) overdue open cases.")] = None,
    mark: Annotated[
        list[Mark] | None,
        Query(description="Repeatable: remind first (§3.7) marks, reminder_ignored and repeat."),
    ] = None,
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
        mark=tuple(mark or ()),
    )


CaseFilterDep = Annotated[crud.CaseFilter, Depends(case_filter)]

MAX_OFFSET = 10**12
"""Upper bound for offsets and sequence numbers in queries: far beyond any real store, and within
the 64-bit integers SQLite and PostgreSQL bind (a larger one was a 500, found by schemathesis)."""
OffsetQuery = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip.")]
"""The ``offset`` parameter of every paginated list."""
