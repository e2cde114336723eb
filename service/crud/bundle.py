"""One case as a signed evidence package (``bundle.zip``): alert records, every evidence file, the case
and its history, the model, the camera config version in force at the alert; ``zones.bundle`` writes the
manifest and signature and checks them offline."""

from __future__ import annotations

import hashlib
import io
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.core.errors import NotFound
from service.core.security import Principal
from service.crud.cases import case_detail
from service.crud.evidence import evidence_file
from service.models import AlertRecordRow, CameraConfigVersion, Case
from zones.bundle import BundleWriter

_EXTENSIONS: Final = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "video/mp4": ".mp4"}


def _json(value: Any) -> bytes:
    return (json.dumps(value, ensure_ascii=False, indent=2, allow_nan=False) + "\n").encode("utf-8")


def config_in_force(session: Session, *, camera_id: str, at: datetime) -> CameraConfigVersion | None:
    """The camera's config version stored last at or before ``at`` (None: none was kept in the service)."""
    return session.scalars(
        select(CameraConfigVersion)
        .where(CameraConfigVersion.camera_id == camera_id, CameraConfigVersion.updated_at <= at)
        .order_by(CameraConfigVersion.version.desc())
        .limit(1)
    ).first()


def case_bundle(
    session: Session,
    *,
    case: Case,
    actor: Principal,
    now: datetime,
    evidence_dir: Path | None,
    key: Ed25519PrivateKey,
    service: str,
) -> bytes:
    """The zip's bytes. Evidence the service cannot read (never uploaded, no evidence root) is listed in the
    manifest as missing, with the SHA-256 its record gave, so the reader sees what the package lacks."""
    evidence: list[dict[str, Any]] = []
    files: list[tuple[str, bytes]] = []
    for index, item in enumerate(case.evidence):
        entry: dict[str, Any] = {"index": index, "kind": item["kind"], "stage": item["stage"], "sha256": item["sha256"]}
        try:
            found = evidence_file(session, case=case, index=index, evidence_dir=evidence_dir)
        except NotFound:
            entry["file"] = None
            entry["missing"] = "not uploaded to the service and not under its evidence folder"
        else:
            data = found.data if found.data is not None else found.path.read_bytes()  # type: ignore[union-attr]
            kind = re.sub(r"[^A-Za-z0-9_-]", "_", str(item["kind"]))  # a record's kind is free text
            name = f"evidence/{index:02d}-{kind}{_EXTENSIONS.get(found.content_type, '.bin')}"
            entry["file"] = name
            entry["matches_record"] = hashlib.sha256(data).hexdigest() == item["sha256"]
            files.append((name, data))
        evidence.append(entry)
    records = session.scalars(
        select(AlertRecordRow).where(AlertRecordRow.alert_id == case.id).order_by(AlertRecordRow.received_at)
    ).all()
    config = config_in_force(session, camera_id=case.camera_id, at=case.alerted_at)
    writer = BundleWriter(
        meta={
            "case_id": case.id,
            "created_at": now.isoformat(),
            "created_by": {"name": actor.name, "role": actor.role},
            "service": service,
            "model": {"name": case.model.get("name"), "sha256": case.model.get("sha256")},
            "camera_config": (
                {"camera_id": config.camera_id, "version": config.version, "sha256": config.config_sha256}
                if config is not None
                else None
            ),
            "evidence": evidence,
        }
    )
    writer.add("case.json", _json(case_detail(session, case=case, now=now).model_dump(mode="json")))
    for record in records:
        writer.add(f"records/{record.event}.json", record.payload.encode("utf-8"))
    if config is not None:
        writer.add(
            "camera_config.json",
            _json(
                {
                    "camera_id": config.camera_id,
                    "version": config.version,
                    "updated_at": config.updated_at.isoformat(),
                    "updated_by": config.updated_by,
                    "config": json.loads(config.config),
                }
            ),
        )
    for name, data in files:
        writer.add(name, data)
    buffer = io.BytesIO()
    writer.write(buffer, key)
    return buffer.getvalue()
