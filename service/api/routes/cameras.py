"""Camera health as reported by ``streetwatch run``: ``online``, ``offline``, ``view_moved``, ``obstructed`` or
``blurred`` (DESIGN §3.6) and the stream's last error. A change of status is a ``camera.health`` event on
``/api/v1/events`` and a ``camera.health`` webhook to the endpoints of the camera-health team
(``STREETWATCH_CAMERA_HEALTH_TEAM``, default ``admins``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from sqlalchemy.exc import IntegrityError

from service import crud
from service.api.deps import (
    ERROR_RESPONSES,
    CameraPrincipal,
    DbDep,
    NowDep,
    ReaderPrincipal,
    SessionDep,
    SettingsDep,
)
from service.schemas import CameraList, CameraPublic, CameraStatusIn

router = APIRouter(prefix="/api/v1", tags=["cameras"])


@router.get("/cameras", response_model=CameraList, responses=ERROR_RESPONSES, summary="Cameras and their status")
def list_cameras(principal: ReaderPrincipal, session: SessionDep) -> CameraList:
    return CameraList(items=[CameraPublic.model_validate(row) for row in crud.list_cameras(session)])


@router.post(
    "/cameras/{camera_id}/status",
    response_model=CameraPublic,
    responses=ERROR_RESPONSES,
    summary="Report a camera's status (camera role)",
)
def post_camera_status(
    camera_id: Annotated[str, Path(pattern=r"^[a-z0-9-]{1,64}$")],
    body: CameraStatusIn,
    principal: CameraPrincipal,
    db: DbDep,
    now: NowDep,
    settings: SettingsDep,
    request: Request,
) -> CameraPublic:
    for attempt in range(2):
        try:
            with db.writing() as session:
                camera, queued = crud.record_camera_status(
                    session,
                    camera_id=camera_id,
                    status=body,
                    now=now,
                    actor=principal,
                    health_team=settings.camera_health_team,
                )
                public = CameraPublic.model_validate(camera)
            if queued:
                request.app.state.wake_relay()  # a camera.health message waits in the outbox
            return public
        except IntegrityError:  # first report of a camera raced with another
            if attempt:
                raise
    raise AssertionError("unreachable")
