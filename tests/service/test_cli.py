"""The service's commands through the real ``streetwatch`` console script, and the import boundary."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from sqlalchemy import select
from typer.testing import CliRunner

from service import crud
from service.cli import token_app, webhook_app
from service.core.db import open_database
from service.models import ApiToken, WebhookEndpoint
from zones.errors import InputError

SCRIPT = str(Path(sys.executable).with_name("streetwatch"))


def run(*args: str, allow_private: bool = False) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREETWATCH_")}
    if allow_private:
        env["STREETWATCH_WEBHOOK_ALLOW_PRIVATE"] = "1"
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, env=env, timeout=120)


def test_token_create_prints_a_working_token_and_stores_only_its_hash(sqlite_url: str) -> None:
    result = run("token", "create", "--role", "officer", "--name", "li-wei", "--team", "team-a", "--db", sqlite_url)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert token.startswith("sw_") and len(token) > 40 and "\n" not in token
    db = open_database(sqlite_url)
    with db.reading() as session:
        principal = crud.principal_for_token(session, token=token)
        stored = session.scalars(select(ApiToken)).one()
    assert principal is not None and (principal.role, principal.team, principal.name) == ("officer", "team-a", "li-wei")
    assert stored.token_sha256 != token and token not in repr(vars(stored))
    revoked = run("token", "revoke", "--name", "li-wei", "--db", sqlite_url)
    assert revoked.returncode == 0 and "revoked 1" in revoked.stderr
    with db.reading() as session:
        assert crud.principal_for_token(session, token=token) is None
    db.dispose()


def invoke(*args: str, allow_private: bool = False) -> BaseException | None:
    """In-process run of the service commands (as detector.cli registers them); returns the error."""
    app = typer.Typer()
    app.add_typer(token_app, name="token")
    app.add_typer(webhook_app, name="webhook")
    env = {"STREETWATCH_WEBHOOK_ALLOW_PRIVATE": "1" if allow_private else "0"}
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exception


def test_a_user_error_exits_2_through_the_console_script(sqlite_url: str) -> None:
    result = run("token", "create", "--role", "mayor", "--name", "x", "--db", sqlite_url)
    assert result.returncode == 2
    assert "unknown role 'mayor'" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("token", "create", "--role", "mayor", "--name", "x"), "unknown role 'mayor'"),
        (("token", "create", "--role", "officer", "--name", "x"), "officer tokens need a team"),
        (("token", "create", "--role", "officer", "--name", "x", "--team", "bad team!"), "--team"),
        (("token", "revoke", "--id", "nope"), "no token nope"),
        (("webhook", "add", "--team", "team-a", "--url", "http://127.0.0.1:9/x"), "STREETWATCH_WEBHOOK_ALLOW_PRIVATE"),
        (("webhook", "add", "--team", "team-a", "--url", "not a url"), "--url"),
        (("webhook", "add", "--team", "team-a", "--url", "ftp://93.184.216.34/"), "--url"),
    ],
)
def test_user_errors_raise_input_error(sqlite_url: str, args: tuple[str, ...], message: str) -> None:
    error = invoke(*args, "--db", sqlite_url)
    assert isinstance(error, InputError), error  # detector.cli maps it to exit 2
    assert message in str(error)


@pytest.mark.parametrize(
    ("db", "message"),
    [
        ("sqlite:////nonexistent-dir/x.db", "does not exist"),
        ("mysql://u@h/x", "unsupported database"),
        ("::::", "not a database URL"),
        ("postgresql://nobody@127.0.0.1:1/x", "cannot reach database"),
    ],
)
def test_bad_database_url_is_an_input_error(db: str, message: str) -> None:
    error = invoke("token", "create", "--role", "admin", "--name", "x", "--db", db)
    assert isinstance(error, InputError), error
    assert message in str(error) and "--db" in str(error)


def test_webhook_add_prints_secret(sqlite_url: str) -> None:
    result = run("webhook", "add", "--team", "team-a", "--url", "http://127.0.0.1:9/hook", "--db", sqlite_url,
                 allow_private=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
    secret = result.stdout.strip()
    assert secret.startswith("whsec_")
    db = open_database(sqlite_url)
    with db.reading() as session:
        endpoint = session.scalars(select(WebhookEndpoint)).one()
    db.dispose()
    assert (endpoint.team, endpoint.url, endpoint.secret) == ("team-a", "http://127.0.0.1:9/hook", secret)
    listed = run("webhook", "list", "--db", sqlite_url)
    assert "team-a" in listed.stdout and secret not in listed.stdout


def test_help_lists_the_service_commands() -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in ("serve", "token", "webhook"):
        assert command in result.stdout
    serve = run("serve", "--help")
    assert "--host" in serve.stdout and "--port" in serve.stdout and "--db" in serve.stdout
    assert "127.0.0.1" in serve.stdout and "8000" in serve.stdout


def test_default_database_is_streetwatch_db_in_the_working_directory(tmp_path: Path) -> None:
    code = "from service.cli import _open; settings, db = _open(None); print(db.engine.url.database)"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREETWATCH_")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env,
                         cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "./streetwatch.db"
    assert (tmp_path / "streetwatch.db").exists()  # created and migrated on first use


def test_service_never_imports_pixels_or_models() -> None:
    code = (
        "import sys\n"
        "import service.main, service.cli, service.relay, service.crud\n"
        "from service.main import create_app\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('cv2', 'torch', 'ultralytics', 'detector'))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_nothing_outside_service_imports_service() -> None:
    root = Path(__file__).resolve().parents[2]
    offenders = []
    for package in ("zones", "detector"):
        for path in (root / package).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            if "import service" in text or "from service" in text:
                offenders.append(str(path.relative_to(root)))
    assert offenders == []
