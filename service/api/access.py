"""Writing the access log from routes: ``AccessLogDep`` knows the database, the time and the client's
address; a route names who did what to which target. Changes log inside their own transaction (the row
and the change stand or fall together); reads log in a transaction of their own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from service import crud
from service.api.deps import DbDep, NowDep, client_address
from service.core.db import Database
from service.core.security import Principal


@dataclass(frozen=True)
class AccessRecorder:
    db: Database
    now: datetime
    client: str

    def add(
        self, session: Session, actor: Principal | None, action: str, target: str, detail: str | None = None
    ) -> None:
        """Log inside the caller's write transaction."""
        crud.record_access(
            session, actor=actor, action=action, target=target, client=self.client, now=self.now, detail=detail
        )

    def __call__(self, actor: Principal | None, action: str, target: str, detail: str | None = None) -> None:
        """Log in a transaction of its own (reads, which hold no write transaction)."""
        with self.db.writing() as session:
            self.add(session, actor, action, target, detail)


async def access_recorder(request: Request, db: DbDep, now: NowDep) -> AccessRecorder:
    return AccessRecorder(db=db, now=now, client=client_address(request))


AccessLogDep = Annotated[AccessRecorder, Depends(access_recorder)]
