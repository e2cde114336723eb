"""Service commands for the ``streetwatch`` CLI (entry-point group ``streetwatch.commands``):
``serve``, ``token create|list|revoke``, ``webhook add|list``, ``dataset export|import``.
User errors raise InputError (exit 2)."""

from __future__ import annotations

import getpass
import os
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from zones.errors import InputError

if TYPE_CHECKING:
    from service.core.config import Settings
    from service.core.db import Database

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL: sqlite:///path.db or postgresql://user@host/db "
        "[default: $STREETWATCH_DATABASE_URL or sqlite:///./streetwatch.db]",
        show_default=False,
    ),
]


def _settings(db: str | None) -> Settings:
    from pydantic import ValidationError

    from service.core.config import Settings

    try:
        return Settings(database_url=db) if db else Settings()
    except ValidationError as error:
        first = error.errors()[0]
        field = "STREETWATCH_" + ".".join(str(part) for part in first["loc"]).upper()
        raise InputError(first["msg"], field=field) from None


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no name for this uid (containers)
        return "?"


def _open(db: str | None) -> tuple[Settings, Database]:
    from service.core.db import open_database

    settings = _settings(db)
    return settings, open_database(settings.database_url)


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port.")] = 8000,
    db: DbOption = None,
) -> None:
    """Run the service: API, dashboard and officer pages, webhook relay."""
    import uvicorn

    from service.main import GracefulServer, create_app

    settings, database = _open(db)
    app = create_app(settings, db=database)
    typer.echo(f"streetwatch: serving on http://{host}:{port}/ (database {database.engine.url!r})", err=True)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=os.environ.get("STREETWATCH_LOG_LEVEL", "info"),
        timeout_graceful_shutdown=5,
        proxy_headers=False,
    )
    GracefulServer(config).run()


token_app = typer.Typer(help="API tokens (only their SHA-256 is stored).", no_args_is_help=True)


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help="camera | operator | officer | supervisor | admin")],
    name: Annotated[str, typer.Option(help="Who or what holds the token (shown in audit trails).")],
    team: Annotated[str | None, typer.Option(help="Team (required for officers).")] = None,
    db: DbOption = None,
) -> None:
    """Create a token and print it on stdout (the only time it is shown)."""
    from pydantic import ValidationError

    from service import crud
    from service.core.clock import utc_now
    from service.core.errors import Invalid
    from service.core.security import ROLES
    from service.schemas import TokenCreate

    if role not in ROLES:
        raise InputError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}", field="--role")
    try:
        spec = TokenCreate.model_validate({"role": role, "name": name, "team": team})
    except ValidationError as error:
        first = error.errors()[0]
        raise InputError(first["msg"], field="--" + str(first["loc"][0])) from None
    _, database = _open(db)
    try:
        with database.writing() as session:
            row, token = crud.create_token(session, role=spec.role, name=spec.name, team=spec.team, now=utc_now())
            crud.record_access(
                session,
                actor=None,
                action="token.create",
                target=f"token/{row.id}",
                client="command line",
                now=row.created_at,
                detail=f"{row.role} {row.name} (streetwatch token create, user {_os_user()})",
            )
    except Invalid as error:
        raise InputError(error.detail, field="--team") from None
    finally:
        database.dispose()
    typer.echo(token)


@token_app.command("list")
def token_list(db: DbOption = None) -> None:
    """List tokens: id, role, team, name, revoked."""
    from service import crud

    _, database = _open(db)
    with database.reading() as session:
        for row in crud.list_tokens(session):
            revoked = f"revoked {row.revoked_at.isoformat()}" if row.revoked_at else "active"
            typer.echo(f"{row.id}\t{row.role}\t{row.team or '-'}\t{row.name}\t{revoked}")
    database.dispose()


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[str | None, typer.Option("--id", help="Token id (from `token list`).")] = None,
    name: Annotated[str | None, typer.Option(help="Revoke every active token with this name.")] = None,
    db: DbOption = None,
) -> None:
    """Revoke tokens; they stop working on their next request."""
    from service import crud
    from service.core.clock import utc_now
    from service.core.errors import NotFound

    if (token_id is None) == (name is None):
        raise InputError("give exactly one of --id or --name", field="--id")
    _, database = _open(db)
    try:
        with database.writing() as session:
            if token_id is not None:
                crud.revoke_token(session, token_id=token_id, now=utc_now())
                count = 1
            else:
                count = crud.revoke_tokens_named(session, name=name or "", now=utc_now())
    except NotFound as error:
        raise InputError(error.detail, field="--id") from None
    finally:
        database.dispose()
    typer.echo(f"revoked {count} token(s)", err=True)


webhook_app = typer.Typer(help="Dispatch endpoints (Standard Webhooks).", no_args_is_help=True)


@webhook_app.command("add")
def webhook_add(
    team: Annotated[str, typer.Option(help="Team whose dispatched cases go to this endpoint.")],
    url: Annotated[str, typer.Option(help="http(s) URL that receives signed POSTs.")],
    events: Annotated[
        list[str] | None,
        typer.Option(
            "--events",
            help="Message types it gets, comma-separated or repeated: case.dispatched, case.updated, "
            "case.reminder (remind first: the city's notifier). Default: case.dispatched,case.updated.",
            show_default=False,
        ),
    ] = None,
    db: DbOption = None,
) -> None:
    """Register an endpoint and print its whsec_… signing secret on stdout."""
    from pydantic import ValidationError

    from service import crud
    from service.core.clock import utc_now
    from service.core.errors import Invalid
    from service.schemas import WebhookCreate

    wanted = None if events is None else [name.strip() for item in events for name in item.split(",") if name.strip()]
    try:
        spec = WebhookCreate.model_validate({"team": team, "url": url, "events": wanted})
    except ValidationError as error:
        first = error.errors()[0]
        raise InputError(first["msg"], field="--" + str(first["loc"][0])) from None
    settings, database = _open(db)
    try:
        with database.writing() as session:
            _, secret = crud.add_webhook(
                session,
                team=spec.team,
                url=url,
                events=spec.events,
                now=utc_now(),
                allow_private=settings.webhook_allow_private,
            )
    except Invalid as error:
        raise InputError(error.detail, field="--url") from None
    finally:
        database.dispose()
    typer.echo(secret)


@webhook_app.command("list")
def webhook_list(db: DbOption = None) -> None:
    """List endpoints with their backlog."""
    from service import crud

    _, database = _open(db)
    with database.reading() as session:
        for item in crud.list_webhooks(session):
            state = f"disabled ({item.disabled_reason})" if item.disabled_at else "enabled"
            typer.echo(
                f"{item.id}\t{item.team}\t{item.url}\t{state}\tpending={item.pending} failed={item.failed} "
                f"delivered={item.delivered}\tevents={','.join(item.events)}"
            )
    database.dispose()


dataset_app = typer.Typer(
    help="Training data: operators' verdicts → YOLO / Label Studio; labelled exports → YOLO.", no_args_is_help=True
)


class DatasetFormat(StrEnum):
    yolo = "yolo"
    label_studio = "label-studio"


@dataset_app.command("export")
def dataset_export(
    out: Annotated[Path, typer.Option("--out", help="Dataset folder (created; later runs add only new verdicts).")],
    db: DbOption = None,
    since: Annotated[
        str | None, typer.Option(help="Only verdicts given at or after this ISO 8601 time (with offset).")
    ] = None,
    camera: Annotated[list[str] | None, typer.Option("--camera", help="Only this camera (repeatable).")] = None,
    evidence_dir: Annotated[
        Path | None,
        typer.Option(
            "--evidence-dir",
            help="Root that evidence paths are relative to, for snapshots never uploaded "
            "[default: $STREETWATCH_EVIDENCE_DIR]",
            show_default=False,
        ),
    ] = None,
    val_fraction: Annotated[
        float, typer.Option(help="Share of (camera, local day) groups that go to val.", min=0.0, max=1.0)
    ] = 0.2,
    format: Annotated[
        DatasetFormat, typer.Option("--format", help="yolo: ultralytics dataset; label-studio: tasks.json to review.")
    ] = DatasetFormat.yolo,
    image_url_prefix: Annotated[
        str | None,
        typer.Option(
            help="label-studio: prefix of each task's image URL [default: /data/local-files/?d=<DIR name>/, "
            "i.e. Label Studio's local files with LOCAL_FILES_DOCUMENT_ROOT = the parent of DIR]",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Export filed cases (labelled boxes) and rejected ones (hard negatives) with their clean snapshots.

    Prints the data.yaml (or tasks.json) path on stdout. A case whose snapshot is missing or broken
    stops the run (exit 2, naming the case) and nothing of it is written."""
    from service.dataset import export_dataset, parse_since

    after = parse_since(since)
    settings, database = _open(db)
    try:
        report = export_dataset(
            database,
            out=out,
            since=after,
            cameras=camera or (),
            evidence_dir=evidence_dir if evidence_dir is not None else settings.evidence_dir,
            val_fraction=val_fraction,
            fmt=format.value,  # type: ignore[arg-type]
            image_url_prefix=image_url_prefix,
        )
    finally:
        database.dispose()
    verdicts = ", ".join(f"{n} {v}" for v, n in sorted(report.by_verdict.items())) or "none"
    splits = ", ".join(f"{s} {n}" for s, n in sorted(report.total_by_split.items())) or "empty"
    skipped = ""
    if report.skipped:
        classes = ", ".join(f"{n} {c}" for c, n in sorted(report.skipped.items()))
        skipped = f"; skipped {report.skipped.total()} filed case(s) of classes the model has none of ({classes})"
    typer.echo(
        f"streetwatch: exported {report.added} new verdict(s) ({verdicts}){skipped}; {report.already} already in "
        f"manifest.jsonl; dataset now: {splits}",
        err=True,
    )
    if (
        format is DatasetFormat.yolo
        and report.total_by_split
        and not all(report.total_by_split[s] for s in ("train", "val"))
    ):
        typer.echo(
            "streetwatch: warning: one split is empty (too few camera-days); adjust --val-fraction or add data",
            err=True,
        )
    typer.echo(str(report.main_file))


@dataset_app.command("import")
def dataset_import(
    source: Annotated[
        Path, typer.Argument(help="Label Studio JSON export, or a YOLO export folder / .zip (CVAT, Roboflow).")
    ],
    out: Annotated[Path, typer.Option("--out", help="YOLO dataset folder to write (with our class names).")],
    names_map: Annotated[
        Path | None, typer.Option("--names-map", help="YAML mapping their class name → ours (null drops it).")
    ] = None,
    val_fraction: Annotated[
        float, typer.Option(help="Share of images without a split of their own that go to val.", min=0.0, max=1.0)
    ] = 0.2,
    images: Annotated[
        list[Path] | None, typer.Option("--images", help="Label Studio: folder holding the task images (repeatable).")
    ] = None,
) -> None:
    """Convert labelled data to an ultralytics YOLO dataset; prints its data.yaml path on stdout."""
    from service.dataset import import_dataset

    report = import_dataset(source, out=out, names_map=names_map, val_fraction=val_fraction, images=images or ())
    splits = ", ".join(f"{s} {n}" for s, n in sorted(report.images.items())) or "none"
    boxes = ", ".join(f"{c} {n}" for c, n in sorted(report.boxes.items())) or "none"
    typer.echo(f"streetwatch: imported images: {splits}; boxes: {boxes}", err=True)
    if report.dropped:
        dropped = ", ".join(f"{name} {n}" for name, n in report.dropped.most_common())
        typer.echo(
            f"streetwatch: dropped {sum(report.dropped.values())} box(es) of unknown classes ({dropped}); "
            "map them with --names-map",
            err=True,
        )
    if report.unannotated:
        typer.echo(f"streetwatch: skipped {report.unannotated} task(s) without annotations", err=True)
    if report.missing_labels:
        typer.echo(f"streetwatch: {report.missing_labels} image(s) had no label file (kept as negatives)", err=True)
    typer.echo(str(report.out / "data.yaml"))
