"""Case bundles: one case's evidence as a signed zip, and the public key that checks them."""

from __future__ import annotations

from typing import Annotated

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import APIRouter, Path, Request, Response

from service import crud
from service.api.access import AccessLogDep
from service.api.deps import ERROR_RESPONSES, CurrentPrincipal, NowDep, ReviewerPrincipal, SessionDep, SettingsDep
from service.schemas import ErrorOut
from service.schemas_accountability import BundleKey
from zones.bundle import ALGORITHM, key_id, public_key_pem

router = APIRouter(prefix="/api/v1", tags=["bundles"])


def _key(request: Request) -> Ed25519PrivateKey:
    key: Ed25519PrivateKey = request.app.state.bundle_key
    return key


@router.get(
    "/cases/{case_id}/bundle.zip",
    response_class=Response,
    responses={
        **ERROR_RESPONSES,
        404: {"model": ErrorOut, "description": "No such case."},
        200: {"content": {"application/zip": {}}, "description": "The bundle."},
    },
    summary="One case as a signed evidence package (zip)",
    description=(
        "The alert records (opened, closed), every evidence file the service holds (snapshots, clean snapshots, "
        "clips, after-evidence, officers' photos), the case with its history (who, when, notes), the model's name "
        "and SHA-256, the camera config version in force at the alert, and `manifest.json` listing each file with "
        "its SHA-256, signed (Ed25519, `manifest.sig`) with the key of `GET /api/v1/keys/bundle`. Check it offline: "
        "`streetwatch verify BUNDLE.zip --public-key KEY.pem`. Operators, supervisors, admins; logged."
    ),
)
def case_bundle(
    case_id: Annotated[str, Path(max_length=64, description="Case id.")],
    principal: ReviewerPrincipal,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    request: Request,
    access: AccessLogDep,
) -> Response:
    case = crud.get_case(session, case_id=case_id, actor=principal)
    data = crud.case_bundle(
        session,
        case=case,
        actor=principal,
        now=now,
        evidence_dir=settings.evidence_dir,
        key=_key(request),
        service=f"streetwatch {request.app.version}",
    )
    access(principal, "bundle.export", f"case/{case.id}", detail=f"{len(data)} bytes")
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="case-{case.id}.zip"', "Cache-Control": "no-store"},
    )


@router.get(
    "/keys/bundle",
    response_model=BundleKey,
    responses=ERROR_RESPONSES,
    summary="The public key that signs case bundles",
    description="Save `public_key` as a .pem file and give it to `streetwatch verify BUNDLE.zip --public-key`.",
)
def bundle_key(principal: CurrentPrincipal, request: Request) -> BundleKey:
    public = _key(request).public_key()
    return BundleKey(algorithm=ALGORITHM, key_id=key_id(public), public_key=public_key_pem(public))
