"""Case bundles end to end: a demo-like case (the sample street camera's config, its clip as evidence, clean
and after snapshots, an officer's photo, the full lifecycle) exported by the service and checked offline by
``streetwatch verify`` through the console script; each kind of tampering fails naming the file."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from service.core.signing import key_file_for
from tests.service.helpers import FakeClock, LiveServer, alert, closed, ingest, settings_for, start_server
from tests.service.test_browser import png
from zones.bundle import MANIFEST, SIGNATURE, safe_member

SCRIPT = str(Path(sys.executable).with_name("streetwatch"))
SAMPLES = Path(__file__).resolve().parents[2] / "sample_videos"


def verify(bundle: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREETWATCH_")}
    return subprocess.run([SCRIPT, "verify", str(bundle), *args], capture_output=True, text=True, env=env, timeout=120)


@dataclass
class Exported:
    live: LiveServer
    case_id: str
    bundle: Path
    key: Path
    workdir: Path


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exported]:
    work = tmp_path_factory.mktemp("bundle")
    evidence_root = work / "audit"
    (evidence_root / "evidence" / "x").mkdir(parents=True)
    snapshot = png(96, 64, (20, 30, 50, 60))
    (evidence_root / "evidence" / "x" / "snapshot.png").write_bytes(snapshot)
    clip = (SAMPLES / "street_day.mp4").read_bytes()
    shutil.copyfile(SAMPLES / "street_day.mp4", evidence_root / "evidence" / "x" / "clip.mp4")
    clean, after, photo = png(96, 64, (0, 0, 1, 1)), png(96, 64, (40, 40, 41, 41)), png(80, 60, (10, 10, 30, 30))
    clock = FakeClock(datetime(2026, 11, 27, 0, 0, tzinfo=UTC))  # the alert comes at 01:17 UTC
    live = start_server(settings_for(f"sqlite:///{work / 'streetwatch.db'}", evidence_dir=evidence_root), clock=clock)
    config = yaml.safe_load((SAMPLES / "street_day.camera.yaml").read_text(encoding="utf-8"))
    camera_id = config["id"]
    record = alert(
        camera_id=camera_id,
        evidence=[
            {"kind": "snapshot", "path": "evidence/x/snapshot.png", "sha256": hashlib.sha256(snapshot).hexdigest()},
            {"kind": "snapshot_clean", "path": "evidence/x/clean.png", "sha256": hashlib.sha256(clean).hexdigest()},
            {"kind": "clip", "path": "evidence/x/clip.mp4", "sha256": hashlib.sha256(clip).hexdigest()},
        ],
    )
    with live.client("admin") as admin, live.client("camera") as camera:
        assert admin.put(f"/api/v1/cameras/{camera_id}/config", json=config).status_code == 200
        clock.advance(2 * 3600)
        sha = hashlib.sha256(clean).hexdigest()
        assert camera.put(f"/api/v1/evidence/{sha}", content=clean, headers={"Content-Type": "image/png"}).is_success
        assert ingest(camera, record).status_code == 201
        for action in ("file", "dispatch"):
            assert admin.post(f"/api/v1/cases/{record['id']}/actions", json={"action": action}).status_code == 200
        shot = admin.post(f"/api/v1/cases/{record['id']}/photos", content=photo, headers={"Content-Type": "image/png"})
        assert shot.status_code == 200, shot.text
        assert admin.post(
            f"/api/v1/cases/{record['id']}/actions", json={"action": "handle", "note": "摊位已清理"}
        ).is_success
        sha = hashlib.sha256(after).hexdigest()
        assert camera.put(f"/api/v1/evidence/{sha}", content=after, headers={"Content-Type": "image/png"}).is_success
        gone = closed(
            record,
            evidence=[*record["evidence"], {"kind": "snapshot_after", "path": "evidence/x/after.png", "sha256": sha}],
        )
        assert ingest(camera, gone).status_code == 201
        assert admin.post(f"/api/v1/cases/{record['id']}/actions", json={"action": "close"}).is_success
        # A later config version: the bundle must carry the one in force at the alert, not this one.
        config["name"] = "renamed after the alert"
        assert admin.put(f"/api/v1/cameras/{camera_id}/config", json=config).json()["version"] == 2
        response = admin.get(f"/api/v1/cases/{record['id']}/bundle.zip")
        key = admin.get("/api/v1/keys/bundle").json()
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    bundle = work / "case.zip"
    bundle.write_bytes(response.content)
    (work / "bundle.pem").write_text(key["public_key"])
    yield Exported(live=live, case_id=record["id"], bundle=bundle, key=work / "bundle.pem", workdir=work)
    live.stop()
    live.db.dispose()


def members(bundle: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(bundle) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def rewrite(source: Path, target: Path, change: Callable[[dict[str, bytes]], dict[str, bytes]]) -> Path:
    files = change(members(source))
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return target


def test_the_demo_like_case_verifies(exported: Exported) -> None:
    result = verify(exported.bundle, "--public-key", str(exported.key))
    assert result.returncode == 0, result.stderr
    assert f"case {exported.case_id}" in result.stdout and "signed by the given public key" in result.stdout


def test_the_bundle_holds_everything_about_the_case(exported: Exported) -> None:
    files = members(exported.bundle)
    assert all(safe_member(name) for name in files)  # no path outside the folder it unpacks into
    manifest = json.loads(files[MANIFEST])
    assert sorted(files) == sorted([MANIFEST, SIGNATURE, *(item["path"] for item in manifest["files"])])
    assert set(files) >= {
        "case.json",
        "records/violation.opened.json",
        "records/violation.closed.json",
        "camera_config.json",
        "evidence/00-snapshot.png",
        "evidence/01-snapshot_clean.png",
        "evidence/02-clip.mp4",
        "evidence/03-handling_photo.png",
        "evidence/04-snapshot_after.png",
    }
    assert files["evidence/02-clip.mp4"] == (SAMPLES / "street_day.mp4").read_bytes()
    assert all(item["matches_record"] for item in manifest["evidence"])
    case = json.loads(files["case.json"])
    assert case["status"] == "closed"
    actions = [(c["action"], c["actor"]) for c in case["history"] if c["kind"] == "action"]
    assert actions == [("file", "admin-1"), ("dispatch", "admin-1"), ("handle", "admin-1"), ("close", "admin-1")]
    assert any(c["note"] == "摊位已清理" for c in case["history"])
    assert manifest["model"] == {"name": "streetwatch-v1", "sha256": "a" * 64}
    config = json.loads(files["camera_config.json"])
    assert (config["version"], manifest["camera_config"]["version"]) == (1, 1)
    assert config["config"]["name"] != "renamed after the alert"
    assert manifest["created_by"] == {"name": "admin-1", "role": "admin"}


def _flip_last_byte(name: str) -> Callable[[dict[str, bytes]], dict[str, bytes]]:
    def change(files: dict[str, bytes]) -> dict[str, bytes]:
        data = bytearray(files[name])
        data[len(data) // 2] ^= 0x01
        return {**files, name: bytes(data)}

    return change


def test_one_changed_byte_in_any_file_fails_naming_it(exported: Exported, tmp_path: Path) -> None:
    names = [name for name in members(exported.bundle) if name not in (MANIFEST, SIGNATURE)]
    assert len(names) == 9
    for name in names:
        result = verify(
            rewrite(exported.bundle, tmp_path / "t.zip", _flip_last_byte(name)), "--public-key", str(exported.key)
        )
        assert result.returncode == 2, name
        first = result.stderr.splitlines()[0]
        assert f": {name}: SHA-256 does not match the manifest" in first, result.stderr


@pytest.mark.parametrize(
    ("change", "names"),
    [
        (lambda f: {k: v for k, v in f.items() if k != "evidence/02-clip.mp4"}, "evidence/02-clip.mp4: missing"),
        (lambda f: {k: v for k, v in f.items() if k != "case.json"}, "case.json: missing"),
        (_flip_last_byte(MANIFEST), f"{MANIFEST}: the signature does not verify"),
        (
            lambda f: {**f, MANIFEST: f[MANIFEST].replace(b'"sha256": "', b'"sha256": "0', 1)},
            f"{MANIFEST}: the signature does not verify",
        ),
        (_flip_last_byte(SIGNATURE), f"{MANIFEST}: the signature does not verify"),
        (lambda f: {k: v for k, v in f.items() if k != SIGNATURE}, f"{SIGNATURE}: missing"),
        (lambda f: {k: v for k, v in f.items() if k != MANIFEST}, f"{MANIFEST}: missing"),
        (lambda f: {**f, "extra.txt": b"planted"}, "extra.txt: not listed in the manifest"),
        (lambda f: {**f, "../outside.txt": b"x"}, "../outside.txt: path outside the bundle"),
        (lambda f: {**f, "/etc/cron.d/x": b"x"}, "/etc/cron.d/x: path outside the bundle"),
    ],
    ids=[
        "removed-evidence",
        "removed-case",
        "manifest-byte",
        "manifest-edited-hash",
        "signature-byte",
        "no-signature",
        "no-manifest",
        "planted-file",
        "dotdot",
        "absolute",
    ],
)
def test_tampering_fails_naming_the_file(
    exported: Exported, tmp_path: Path, change: Callable[[dict[str, bytes]], dict[str, bytes]], names: str
) -> None:
    result = verify(rewrite(exported.bundle, tmp_path / "t.zip", change), "--public-key", str(exported.key))
    assert result.returncode == 2
    assert names in result.stderr.splitlines()[0], result.stderr


def test_a_different_public_key_fails(exported: Exported, tmp_path: Path) -> None:
    other = Ed25519PrivateKey.generate().public_key()
    pem = other.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "other.pem").write_bytes(pem)
    result = verify(exported.bundle, "--public-key", str(tmp_path / "other.pem"))
    assert result.returncode == 2
    assert f"{MANIFEST}: the signature does not verify with the given public key" in result.stderr


def test_resigned_with_another_key_passes_alone_but_fails_against_the_service_key(
    exported: Exported, tmp_path: Path
) -> None:
    """A forger who edits a file, rewrites the manifest and signs with his own key: the bundle is consistent
    in itself, so only the service's public key tells it apart."""
    from zones.bundle import BundleWriter

    files = members(exported.bundle)
    manifest = json.loads(files[MANIFEST])
    writer = BundleWriter(meta={"case_id": manifest["case_id"]})
    for item in manifest["files"]:
        data = files[item["path"]]
        writer.add(item["path"], b'{"status": "rejected"}\n' if item["path"] == "case.json" else data)
    forged = tmp_path / "forged.zip"
    writer.write(forged, Ed25519PrivateKey.generate())
    assert verify(forged).returncode == 0
    result = verify(forged, "--public-key", str(exported.key))
    assert result.returncode == 2 and "does not verify with the given public key" in result.stderr


@pytest.mark.parametrize(("content", "expected"), [(b"not a zip", "not a readable zip file"), (None, "no such bundle")])
def test_a_file_that_is_no_zip_exits_2(tmp_path: Path, content: bytes | None, expected: str) -> None:
    if content is not None:
        (tmp_path / "b.zip").write_bytes(content)
    result = verify(tmp_path / "b.zip")
    assert result.returncode == 2 and expected in result.stderr and "Traceback" not in result.stderr


def test_a_bad_public_key_file_exits_2(exported: Exported, tmp_path: Path) -> None:
    (tmp_path / "k.pem").write_text("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")
    result = verify(exported.bundle, "--public-key", str(tmp_path / "k.pem"))
    assert result.returncode == 2 and "k.pem" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(("role", "status"), [("officer", 403), ("camera", 403), ("operator", 200)])
def test_bundle_roles(exported: Exported, role: str, status: int) -> None:
    with exported.live.client(role) as client:
        assert client.get(f"/api/v1/cases/{exported.case_id}/bundle.zip").status_code == status


def test_the_key_is_made_once_beside_the_database_and_kept(exported: Exported) -> None:
    path = key_file_for(exported.live.settings.database_url)
    assert path is not None and path.parent == exported.workdir and path.stat().st_mode & 0o777 == 0o600
    again = start_server(exported.live.settings)
    try:
        with again.client("admin") as client:
            assert client.get("/api/v1/keys/bundle").json()["public_key"] == exported.key.read_text()
    finally:
        again.stop()
        again.db.dispose()


def test_the_key_can_come_from_the_environment(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (tmp_path / "k.pem").write_bytes(pem)
    live = start_server(settings_for(f"sqlite:///{tmp_path / 's.db'}", signing_key=str(tmp_path / "k.pem")))
    try:
        with live.client("admin") as client:
            served = client.get("/api/v1/keys/bundle").json()["public_key"]
    finally:
        live.stop()
        live.db.dispose()
    expected = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert served == expected.decode()
    assert not (tmp_path / "s.db.bundle-key.pem").exists()


@pytest.mark.postgres
def test_postgresql_keeps_one_key_for_every_replica(pg_cluster: object) -> None:
    url = pg_cluster.new_database()  # type: ignore[attr-defined]
    first, second = start_server(settings_for(url)), start_server(settings_for(url))
    try:
        keys = []
        for live in (first, second):
            with live.client("admin") as client:
                keys.append(client.get("/api/v1/keys/bundle").json()["key_id"])
    finally:
        for live in (first, second):
            live.stop()
            live.db.dispose()
    assert keys[0] == keys[1]
