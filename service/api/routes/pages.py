"""Server-rendered pages: login, command centre (/), officer (/officer), camera setup
(/setup/cameras/{id}). Local assets only; the maps' tile settings travel as data attributes."""

from __future__ import annotations

import html
import json
from pathlib import Path
from string import Template
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from service import crud
from service.api.access import AccessLogDep
from service.api.deps import (
    SESSION_COOKIE,
    DbDep,
    OfficerPrincipal,
    OptionalPrincipal,
    ReaderPrincipal,
    ReviewerPrincipal,
    SettingsDep,
    SupervisorPrincipal,
    client_address,
    get_throttle,
)
from service.api.routes import setup
from service.core.security import Principal, csrf_token
from zones.categories import CATEGORY_LABELS

router = APIRouter(include_in_schema=False)

_TEMPLATES = Path(__file__).resolve().parent.parent.parent / "templates"
_SESSION_MAX_AGE_S = 12 * 3600
# Category → label for the pages' scripts (SW.CATEGORY), in CATEGORIES order: one source for every page.
_CATEGORY_LABELS_JSON = json.dumps(CATEGORY_LABELS, ensure_ascii=False, separators=(",", ":"))


def _render(name: str, **values: str) -> str:
    template = Template((_TEMPLATES / name).read_text(encoding="utf-8"))
    return template.substitute({key: html.escape(value, quote=True) for key, value in values.items()})


def _home_for(principal: Principal) -> str:
    return "/officer" if principal.role == "officer" else "/"


def _safe_next(target: str | None) -> str | None:
    # Only same-site paths: "//evil.example" or "https://…" would turn login into an open redirect.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


def _page(name: str, principal: Principal, request: Request, **extra: str) -> HTMLResponse:
    settings = request.app.state.settings
    body = _render(
        name,
        csrf=csrf_token(settings.secret_key, principal.token_sha256),
        user=principal.name,
        role=principal.role,
        team=principal.team or "",
        tile_url=settings.tile_url or "",
        tile_attribution=settings.tile_attribution,
        tile_gcj02="1" if settings.tile_gcj02 else "",
        categories=_CATEGORY_LABELS_JSON,
        **extra,
    )
    return HTMLResponse(body, headers={"Cache-Control": "no-store"})


@router.get("/login", response_class=HTMLResponse)
def login_page(
    principal: OptionalPrincipal, next_: Annotated[str | None, Query(alias="next", max_length=512)] = None
) -> Response:
    if principal is not None:
        return RedirectResponse(_safe_next(next_) or _home_for(principal), status_code=303)
    return HTMLResponse(_render("login.html", next=_safe_next(next_) or "", error=""))


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, db: DbDep, settings: SettingsDep, access: AccessLogDep) -> Response:
    form = parse_qs((await request.body()).decode("utf-8", "replace"), max_num_fields=10)
    token = (form.get("token") or [""])[0].strip()
    target = _safe_next((form.get("next") or [""])[0])
    throttle = get_throttle(request)
    retry_after = throttle.retry_after_s(client_address(request))
    if retry_after is not None:
        page = _render(
            "login.html", next=target or "", error=f"Too many failed sign-ins. Try again in {retry_after} s."
        )
        return HTMLResponse(page, status_code=429, headers={"Retry-After": str(retry_after)})
    principal = None
    if token:
        with db.reading() as session:
            principal = crud.principal_for_token(session, token=token)
    if principal is None:
        throttle.record_failure(client_address(request))
        access(None, "login.failed", "/login")
        page = _render("login.html", next=target or "", error="Unknown or revoked token.")
        return HTMLResponse(page, status_code=401)
    if principal.role == "camera":
        page = _render("login.html", next=target or "", error="Camera tokens cannot open the pages.")
        return HTMLResponse(page, status_code=403)
    access(principal, "login", "/login")
    response = RedirectResponse(target or _home_for(principal), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=_SESSION_MAX_AGE_S,
        httponly=True,
        samesite="strict",
        secure=settings.mode == "prod",
        path="/",
    )
    return response


@router.post("/logout")
def logout() -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


_FAVICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><circle cx="8" cy="8" r="7" fill="#1f5fbf"/></svg>'
)


@router.get("/favicon.ico")
def favicon() -> Response:
    # Browsers ask for it on every page that names none (JSON, CAP); answer instead of logging 404s.
    return Response(_FAVICON, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})


@router.get("/", response_class=HTMLResponse)
def command_centre(principal: ReaderPrincipal, request: Request) -> Response:
    if principal.role == "officer":
        return RedirectResponse("/officer", status_code=303)
    return _page("dashboard.html", principal, request)


@router.get("/officer", response_class=HTMLResponse)
def officer_page(principal: OfficerPrincipal, request: Request) -> Response:
    return _page("officer.html", principal, request)


@router.get("/assessment", response_class=HTMLResponse)
def assessment_page(principal: SupervisorPrincipal, request: Request) -> Response:
    """The assessment table (考核) per team, grid, camera or category (supervisors, admins)."""
    return _page("assessment.html", principal, request)


@router.get("/setup/cameras/{camera_id}", response_class=HTMLResponse)
def camera_setup_page(
    principal: ReviewerPrincipal,
    request: Request,
    camera_id: Annotated[str, PathParam(pattern=r"^[a-z0-9-]{1,64}$")],
) -> Response:
    """Zones, exclude masks and calibration drawn on the camera's latest snapshot (operator+)."""
    setup.warm_up()  # the page's first preview needs a geometry worker
    return _page("setup.html", principal, request, camera_id=camera_id)
