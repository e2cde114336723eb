"""Server-Sent Events of case changes (``event: case``) and of camera status changes (``event: camera.health``),
read from the change log (so every replica sees all changes)."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from service import crud
from service.api.deps import ERROR_RESPONSES, MAX_OFFSET, DbDep, ReaderPrincipal, SettingsDep
from service.core.clock import Clock
from service.core.db import Database
from service.core.security import Principal
from service.models import CaseChange

router = APIRouter(prefix="/api/v1", tags=["events"])

# A change whose row is older than this is assumed committed together with every lower seq; newer
# rows are re-read each poll because PostgreSQL may commit a lower seq after a higher one.
SETTLE = timedelta(seconds=5)
HEARTBEAT_S = 15.0


def _fetch(db: Database, after: int, actor: Principal) -> list[CaseChange]:
    with db.reading() as session:
        return list(crud.changes_after(session, after=after, actor=actor))


def _last_seq(db: Database) -> int:
    with db.reading() as session:
        return crud.last_change_seq(session)


_SEQ = re.compile(r"[0-9]{1,13}")


def resume_point(last_event_id: str) -> int | None:
    """The seq a reconnecting client saw last, or None (start from now) for anything else.

    ASCII digits only and within MAX_OFFSET: ``str.isdigit`` also accepts "²" (int() then raises)
    and arbitrarily long digit strings overflow the 64-bit bind; both were 500s."""
    if not _SEQ.fullmatch(last_event_id):
        return None
    seq = int(last_event_id)
    return seq if seq <= MAX_OFFSET else None


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={
        **ERROR_RESPONSES,
        200: {
            "content": {"text/event-stream": {}},
            "description": "`event: case`, data = a case change; `event: camera.health`, data = a camera's new "
            "status (online, offline, view_moved, obstructed, blurred).",
        },
    },
    summary="Live case changes (SSE); resume with Last-Event-ID",
)
async def events(
    request: Request,
    principal: ReaderPrincipal,
    db: DbDep,
    settings: SettingsDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    after: Annotated[int | None, Query(ge=0, le=MAX_OFFSET, description="Start after this change seq.")] = None,
) -> StreamingResponse:
    if after is None and last_event_id is not None:
        after = resume_point(last_event_id)
    start = after if after is not None else await run_in_threadpool(_last_seq, db)
    clock: Clock = request.app.state.clock

    async def stream() -> AsyncIterator[str]:
        floor = start
        sent: set[int] = set()
        began = last_beat = time.monotonic()
        yield f"retry: 2000\nid: {start}\n\n"
        stopping: threading.Event = request.app.state.stopping
        while time.monotonic() - began < settings.sse_max_s and not stopping.is_set():
            if await request.is_disconnected():
                return
            changes = await run_in_threadpool(_fetch, db, floor, principal)
            settled_before = clock() - SETTLE
            for change in changes:
                if change.seq in sent:
                    continue
                sent.add(change.seq)
                if change.case_id is None:
                    data = crud.camera_health_event(change).model_dump_json()
                    yield f"id: {change.seq}\nevent: camera.health\ndata: {data}\n\n"
                else:
                    data = crud.change_public(change).model_dump_json()
                    yield f"id: {change.seq}\nevent: case\ndata: {data}\n\n"
                last_beat = time.monotonic()
            settled = [change.seq for change in changes if change.at <= settled_before]
            if settled:
                floor = max(floor, max(settled))
                sent = {seq for seq in sent if seq > floor}
            if time.monotonic() - last_beat > HEARTBEAT_S:
                yield ": keep-alive\n\n"
                last_beat = time.monotonic()
            await asyncio.sleep(settings.sse_poll_s)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
