"""Camera configs kept in the service (DESIGN §3.2 as JSON), with versions; each camera's latest frame.

The browser setup page reads and writes configs here, ``streetwatch run --config-from`` polls them,
and the live runner uploads a snapshot frame per camera to draw zones on. A config is validated with
the same pydantic model as a YAML file (``zones.config.CameraConfig``), and a refusal names the
field path as ``streetwatch check`` does: ``zones[0].polygon`` there is
``"loc": ["body", "zones", 0, "polygon"]`` here, with the same message.

What the service cannot check without OpenCV (DESIGN §2: no cv2 here) is whether calibration points
agree with one homography (``max_reprojection_error_m``); ``streetwatch check`` on the served YAML
and the live runner do, and a runner keeps the previous version of a config it cannot use.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Final, Literal

import yaml
from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from service import crud
from service.api.access import AccessLogDep, AccessRecorder
from service.api.deps import (
    ERROR_RESPONSES,
    CameraPrincipal,
    DbDep,
    NowDep,
    OffsetQuery,
    ReviewerPrincipal,
    SessionDep,
    require_roles,
)
from service.core.db import Database
from service.core.security import Principal, Role
from service.models import CameraConfigVersion
from service.schemas import (
    CAMERA_ID_PATTERN,
    MAX_CONFIG_VERSION,
    CameraConfigHistory,
    CameraConfigPublic,
    CameraConfigRef,
    CameraConfigRefList,
    CameraConfigVersionPublic,
    CameraSnapshotPublic,
    ErrorOut,
    IsoDatetime,
    integral_floats_as_ints,
)

# The messages and field paths of `streetwatch check`, so that the browser and the CLI say the same.
from zones.config import CameraConfig, brief, error_loc, error_message

router = APIRouter(prefix="/api/v1", tags=["camera configs"])
upload_router = APIRouter(prefix="/api/v1", tags=["camera configs"])

CONFIG_READER_ROLES: Final[tuple[Role, ...]] = ("camera", "operator", "supervisor", "admin")
"""Who may read configs: the live runners (camera) and those who set cameras up; not officers."""
ConfigReaderPrincipal = Annotated[Principal, Depends(require_roles(*CONFIG_READER_ROLES))]

CameraId = Annotated[str, Path(pattern=CAMERA_ID_PATTERN, description="Camera id ([a-z0-9-], 1-64).")]
VersionQuery = Annotated[
    int | None, Query(ge=1, le=MAX_CONFIG_VERSION, description="An earlier version (default: the current one).")
]
_IF_MATCH_PATTERN = r'^\s*(\*|(W/)?"?[0-9]{1,10}"?)\s*$'
_NOT_FOUND: Final[dict[int | str, dict[str, Any]]] = {
    404: {"model": ErrorOut, "description": "The camera has no config stored (or not that version)."}
}
_ETAG: Final = {
    "ETag": {"description": 'The version, quoted ("3"): send it back as If-Match.', "schema": {"type": "string"}}
}


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """A model's JSON Schema with its ``$defs`` inlined, to stand alone inside the OpenAPI document."""
    definitions: dict[str, Any] = schema.get("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                rest = {key: value for key, value in node.items() if key != "$ref"}
                return {**resolve(definitions[ref.removeprefix("#/$defs/")]), **resolve(rest)}
            return {key: resolve(value) for key, value in node.items() if key != "$defs"}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


_CONFIG_BODY: Final = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": _inline_refs(CameraConfig.model_json_schema(by_alias=True))}},
    }
}


def _refuse(loc: tuple[str | int, ...], msg: str, kind: str) -> RequestValidationError:
    return RequestValidationError([{"loc": ("body", *loc), "msg": msg, "type": kind}])


def _inexact_windows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """What the YAML loader forgives and JSON has no reason to: a time as a number (YAML 1.1 reads an
    unquoted 18:00 as 1080) and day names not in lower case. In JSON they are what the schema says."""
    problems: list[dict[str, Any]] = []
    zones = data.get("zones")
    for i, zone in enumerate(zones if isinstance(zones, list) else []):
        windows = zone.get("allowed") if isinstance(zone, dict) else None
        for j, window in enumerate(windows if isinstance(windows, list) else []):
            if not isinstance(window, dict):
                continue
            where = ("body", "zones", i, "allowed", j)
            for key in ("from", "to"):
                if isinstance(window.get(key), int | float) and not isinstance(window.get(key), bool):
                    problems.append(
                        {"loc": (*where, key), "msg": 'a time is the text "HH:MM", e.g. "18:00"', "type": "string_type"}
                    )
            days = window.get("days")
            for k, day in enumerate(days if isinstance(days, list) else []):
                if isinstance(day, str) and day != day.strip().lower():
                    problems.append(
                        {
                            "loc": (*where, "days", k),
                            "msg": f"{brief(day)} is not one of mon, tue, wed, thu, fri, sat, sun (lower case)",
                            "type": "literal_error",
                        }
                    )
    return problems


def normalised_config(config: CameraConfig) -> dict[str, Any]:
    """The config as stored and served: every field the schema knows, in its order (a zone's name first),
    absent optional fields left out. It validates again to the same config."""
    data = config.model_dump(mode="json", by_alias=True, exclude_none=True)
    data["zones"] = [{"name": zone["name"], **zone} for zone in data.get("zones", [])]
    return data


async def camera_config_body(camera_id: CameraId, request: Request) -> dict[str, Any]:
    """The body validated as the camera config of ``camera_id``, normalised (``normalised_config``).

    JSON types are taken exactly (``"50"`` is not a number, ``true`` not 1, ``1080`` not a time): the
    body is validated in pydantic's strict JSON mode, after integral floats became integers as JSON
    Schema has it.
    """
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise crud.UnsupportedMediaType(f"send the config as application/json, not {media_type or 'no Content-Type'!r}")
    try:
        data = json.loads(await request.body())
    except (ValueError, RecursionError):
        raise _refuse((), "body is not UTF-8 JSON", "json_invalid") from None
    if not isinstance(data, dict):
        raise _refuse((), "the config must be a JSON object of fields (id, name, source, …)", "model_type")
    if problems := _inexact_windows(data):
        raise RequestValidationError(problems)
    try:
        exact = json.dumps(integral_floats_as_ints(data))
    except RecursionError:
        raise _refuse((), "JSON nested too deeply to be a camera config", "json_invalid") from None
    try:
        config = CameraConfig.model_validate_json(exact, strict=True)
    except ValidationError as error:
        raise RequestValidationError(
            [
                {"loc": ("body", *error_loc(item)), "msg": error_message(item), "type": item["type"]}
                for item in error.errors(include_url=False)
            ]
        ) from None
    if config.id != camera_id:
        raise _refuse(
            ("id",), f"the config's id {config.id!r} is not the camera in the path ({camera_id!r})", "id_mismatch"
        )
    if config.grid_cells is not None:
        raise _refuse(
            ("grid_cells",),
            "a config kept in the service cannot refer to a file; set the camera's grid (code and team) instead",
            "grid_cells_unsupported",
        )
    return normalised_config(config)


ConfigBody = Annotated[dict[str, Any], Depends(camera_config_body)]


def _if_match(value: str | None) -> int | Literal["*"] | None:
    if value is None:
        return None
    tag = value.strip().removeprefix("W/").strip('"')
    return "*" if tag == "*" else int(tag)


def _etag(row: CameraConfigVersion) -> dict[str, str]:
    return {"ETag": f'"{row.version}"'}


def _config_response(row: CameraConfigVersion, response: Response) -> CameraConfigPublic:
    response.headers.update(_etag(row))
    return crud.camera_config_public(row)


@router.get(
    "/camera-configs",
    response_model=CameraConfigRefList,
    responses=ERROR_RESPONSES,
    summary="Current config version of every camera (what live runners poll)",
)
def list_camera_configs(principal: ConfigReaderPrincipal, session: SessionDep) -> CameraConfigRefList:
    return CameraConfigRefList(
        items=[
            CameraConfigRef(camera_id=row.camera_id, version=row.version, updated_at=row.updated_at)
            for row in crud.list_camera_configs(session)
        ]
    )


@router.get(
    "/cameras/{camera_id}/config",
    response_model=CameraConfigPublic,
    responses={
        **ERROR_RESPONSES,
        **_NOT_FOUND,
        200: {"description": "The config version.", "headers": _ETAG},
    },
    summary="A camera's config (current or an earlier version)",
)
def get_camera_config(
    camera_id: CameraId,
    principal: ConfigReaderPrincipal,
    session: SessionDep,
    response: Response,
    version: VersionQuery = None,
) -> CameraConfigPublic:
    return _config_response(crud.get_camera_config(session, camera_id=camera_id, version=version), response)


def _put(
    db: Database,
    camera_id: str,
    config: dict[str, Any],
    if_match: int | Literal["*"] | None,
    actor: Principal,
    now: datetime,
    access: AccessRecorder,
) -> tuple[CameraConfigVersion, bool]:
    for attempt in range(3):
        try:
            with db.writing() as session:
                row, changed = crud.put_camera_config(
                    session, camera_id=camera_id, config=config, if_match=if_match, actor=actor, now=now
                )
                if changed:
                    access.add(session, actor, "config.change", f"camera/{camera_id}/config", f"version {row.version}")
                return row, changed
        except IntegrityError:  # a concurrent PUT took the same version number: read again
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


@router.put(
    "/cameras/{camera_id}/config",
    response_model=CameraConfigPublic,
    responses={
        **ERROR_RESPONSES,
        200: {
            "description": "The stored version (a new one, or the current one when nothing changed).",
            "headers": _ETAG,
        },
        412: {"model": ErrorOut, "description": "If-Match names a version that is no longer the current one."},
        415: {"model": ErrorOut, "description": "The body is not application/json."},
        422: {
            "description": 'Not a valid camera config: `detail[].loc` is the field path (`["body", "zones", 0, '
            "\"polygon\"]`, `streetwatch check`'s `zones[0].polygon`), `msg` the same message as the CLI's."
        },
    },
    summary="Store a camera's config (a new version when it changed)",
    description=(
        "The body is the camera config of DESIGN §3.2 as JSON, validated as `streetwatch check` validates YAML "
        "(unknown fields refused); its `id` must be the camera in the path. `grid_cells` (a file) is refused: "
        "give `grid`. A config equal to the current one adds no version. `If-Match: <version>` (as the ETag "
        "of a GET, quoted or not; `*`: any existing config) makes the PUT conditional: 412 when the current "
        "version is another. Live runners polling `/api/v1/camera-configs` pick the new version up."
    ),
    openapi_extra=_CONFIG_BODY,
)
def put_camera_config(
    camera_id: CameraId,
    principal: ReviewerPrincipal,
    config: ConfigBody,
    db: DbDep,
    now: NowDep,
    response: Response,
    access: AccessLogDep,
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match",
            pattern=_IF_MATCH_PATTERN,
            description='The version last read ("3" or 3), or * for any existing config.',
        ),
    ] = None,
) -> CameraConfigPublic:
    expected = _if_match(if_match)
    if isinstance(expected, int) and expected > MAX_CONFIG_VERSION:
        raise crud.PreconditionFailed(f"camera {camera_id}'s config has no version {expected}")
    row, _changed = _put(db, camera_id, config, expected, principal, now, access)
    return _config_response(row, response)


def _yaml_text(row: CameraConfigVersion) -> str:
    header = (
        f"# streetwatch camera config {row.camera_id}, version {row.version}, stored "
        f"{row.updated_at.isoformat()} by {row.updated_by!r}.\n"
        "# Check it with: streetwatch check FILE.yaml; run it with: streetwatch run --camera FILE.yaml\n"
    )
    body: Mapping[str, Any] = json.loads(row.config)
    return header + yaml.safe_dump(dict(body), sort_keys=False, allow_unicode=True, default_flow_style=None, width=120)


@router.get(
    "/cameras/{camera_id}/config.yaml",
    response_class=Response,
    responses={
        **ERROR_RESPONSES,
        **_NOT_FOUND,
        200: {
            "content": {"text/yaml": {"schema": {"type": "string"}}},
            "description": "The config as YAML.",
            "headers": _ETAG,
        },
    },
    summary="A camera's config as a YAML file (`streetwatch check` / `run --camera` take it)",
)
def get_camera_config_yaml(
    camera_id: CameraId, principal: ConfigReaderPrincipal, session: SessionDep, version: VersionQuery = None
) -> Response:
    row = crud.get_camera_config(session, camera_id=camera_id, version=version)
    return Response(
        _yaml_text(row),
        media_type="text/yaml; charset=utf-8",
        headers={**_etag(row), "Content-Disposition": f'inline; filename="{row.camera_id}.camera.yaml"'},
    )


@router.get(
    "/cameras/{camera_id}/config/history",
    response_model=CameraConfigHistory,
    responses={**ERROR_RESPONSES, **_NOT_FOUND},
    summary="Versions of a camera's config, newest first",
)
def camera_config_history(
    camera_id: CameraId,
    principal: ConfigReaderPrincipal,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: OffsetQuery = 0,
) -> CameraConfigHistory:
    rows = crud.camera_config_history(session, camera_id=camera_id, limit=limit, offset=offset)
    return CameraConfigHistory(items=[CameraConfigVersionPublic.model_validate(row) for row in rows])


# ---- snapshots --------------------------------------------------------------------------------------


def _store_snapshot(
    db: Database,
    camera_id: str,
    data: bytes,
    content_type: str,
    captured_at: datetime | None,
    actor: Principal,
    now: datetime,
) -> CameraSnapshotPublic:
    with db.writing() as session:
        snapshot = crud.store_camera_snapshot(
            session,
            camera_id=camera_id,
            data=data,
            content_type=content_type,
            captured_at=captured_at,
            actor=actor,
            now=now,
        )
        return CameraSnapshotPublic.model_validate(snapshot)


@upload_router.put(
    "/cameras/{camera_id}/snapshot",
    response_model=CameraSnapshotPublic,
    responses={
        **ERROR_RESPONSES,
        413: {"model": ErrorOut, "description": "Larger than the upload limit (default 10 MiB)."},
        415: {"model": ErrorOut, "description": "Content-Type is not image/jpeg or image/png."},
        422: {"model": ErrorOut, "description": "Empty, or the bytes are not the image type the Content-Type says."},
    },
    summary="Upload a camera's latest frame (camera role)",
    description=(
        "Raw body, image/jpeg or image/png (checked by its magic bytes, never decoded). Replaces the camera's "
        "previous snapshot. `captured_at`: when the frame was captured (default: now)."
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                "image/png": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
async def put_camera_snapshot(
    camera_id: CameraId,
    request: Request,
    principal: CameraPrincipal,
    db: DbDep,
    now: NowDep,
    captured_at: Annotated[
        IsoDatetime | None, Query(description="Capture time of the frame (ISO 8601 with offset).")
    ] = None,
    content_type: Annotated[str, Header()] = "application/octet-stream",
) -> CameraSnapshotPublic:
    data = await request.body()
    return await run_in_threadpool(_store_snapshot, db, camera_id, data, content_type, captured_at, principal, now)


@router.get(
    "/cameras/{camera_id}/snapshot",
    response_class=Response,
    responses={
        **ERROR_RESPONSES,
        404: {"model": ErrorOut, "description": "No snapshot uploaded for this camera yet."},
        200: {
            "content": {"image/jpeg": {}, "image/png": {}},
            "description": "The latest frame.",
            "headers": {
                "X-Captured-At": {"description": "When it was captured (ISO 8601).", "schema": {"type": "string"}}
            },
        },
    },
    summary="A camera's latest frame (to set its zones up on)",
)
def get_camera_snapshot(camera_id: CameraId, principal: ReviewerPrincipal, session: SessionDep) -> Response:
    snapshot = crud.get_camera_snapshot(session, camera_id=camera_id)
    return Response(
        content=snapshot.data,
        media_type=snapshot.content_type,
        headers={
            "X-Captured-At": snapshot.captured_at.isoformat(),
            "ETag": f'"{snapshot.sha256}"',
            "Cache-Control": "private, no-cache",
        },
    )
