"""Evidence blobs, officers' handling photos, and reading an evidence file back."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session

from service.core.errors import Conflict, Forbidden, Invalid, NotFound
from service.core.lifecycle import ACTION_ROLES
from service.core.security import Principal
from service.crud.cases import _log, _merge_evidence, _touch, get_case
from service.models import Case, EvidenceBlob

EVIDENCE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "video/mp4"})


# ---- evidence and photos ---------------------------------------------------------------------


def store_blob(
    session: Session, *, data: bytes, content_type: str, now: datetime, expected_sha256: str | None = None
) -> EvidenceBlob:
    content_type = content_type.split(";", 1)[0].strip().lower()
    if content_type not in EVIDENCE_TYPES:
        raise Invalid(f"evidence must be one of {sorted(EVIDENCE_TYPES)}, not {content_type!r}")
    if not data:
        raise Invalid("empty upload")
    digest = hashlib.sha256(data).hexdigest()
    if expected_sha256 is not None and digest != expected_sha256.lower():
        raise Invalid(f"body has SHA-256 {digest}, not {expected_sha256}")
    blob = session.get(EvidenceBlob, digest)
    if blob is None:
        blob = EvidenceBlob(sha256=digest, content_type=content_type, size=len(data), data=data, created_at=now)
        session.add(blob)
        session.flush()
    return blob


def add_case_photo(
    session: Session, *, case_id: str, data: bytes, content_type: str, actor: Principal, now: datetime
) -> Case:
    case = get_case(session, case_id=case_id, actor=actor, for_update=True)
    if actor.role not in ACTION_ROLES["handle"]:
        raise Forbidden(f"role {actor.role} may not add handling photos")
    if case.status not in ("dispatched", "handled"):
        raise Conflict(f"photos are for dispatched or handled cases; this one is {case.status}")
    blob = store_blob(session, data=data, content_type=content_type, now=now)
    _merge_evidence(case, [{"kind": "handling_photo", "path": None, "sha256": blob.sha256, "stage": "handling"}])
    _touch(case, now)
    _log(session, case, kind="photo", actor=actor, now=now, note=f"photo {blob.sha256[:12]}")
    return case


@dataclass(frozen=True)
class EvidenceFile:
    content_type: str
    data: bytes | None = None
    path: Path | None = None


_SUFFIX_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".mp4": "video/mp4",
}


def evidence_file(session: Session, *, case: Case, index: int, evidence_dir: Path | None) -> EvidenceFile:
    """Uploaded blob first; else the file under the evidence root (never outside it)."""
    if not 0 <= index < len(case.evidence):
        raise NotFound(f"case {case.id} has no evidence #{index}")
    item = case.evidence[index]
    blob = session.get(EvidenceBlob, item["sha256"])
    if blob is not None:
        return EvidenceFile(content_type=blob.content_type, data=blob.data)
    path = item.get("path")
    if evidence_dir is not None and path:
        root = evidence_dir.resolve()
        candidate = (root / path).resolve()
        content_type = _SUFFIX_TYPES.get(candidate.suffix.lower())
        if candidate.is_relative_to(root) and candidate.is_file() and content_type:
            return EvidenceFile(content_type=content_type, path=candidate)
    raise NotFound(f"evidence #{index} of case {case.id} has not been uploaded")
