"""Case bundles (``GET /api/v1/cases/{id}/bundle.zip``): the format, and the offline check that
``streetwatch verify BUNDLE.zip`` runs.

A bundle is a zip whose ``manifest.json`` lists every other file with its SHA-256 and size, and whose
``manifest.sig`` is the Ed25519 signature (base64) of the exact bytes of ``manifest.json``, made with the
service's bundle key (public key at ``GET /api/v1/keys/bundle``; the manifest carries it too). The service
writes bundles, anyone checks them: this module lives in ``zones`` so that the CLI reaches it without
importing the service.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

FORMAT: Final = "streetwatch-case-bundle/1"
MANIFEST: Final = "manifest.json"
SIGNATURE: Final = "manifest.sig"
ALGORITHM: Final = "Ed25519"


def public_key_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def key_id(key: Ed25519PublicKey) -> str:
    """SHA-256 of the raw 32-byte public key, hex: a short name to compare keys by."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM; ValueError naming what it is otherwise."""
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"not an Ed25519 public key but {type(key).__name__}")
    return key


def safe_member(name: str) -> bool:
    """Whether a zip member name stays inside the folder it is unpacked into (no absolute path, no ``..``,
    no backslash or drive letter that Windows would read as one)."""
    if not name or "\\" in name or "\x00" in name or ":" in name:
        return False
    path = PurePosixPath(name)
    return not path.is_absolute() and ".." not in path.parts and all(part not in ("", ".") for part in path.parts)


@dataclass
class BundleWriter:
    """Collects the files of one bundle, then writes the zip with its manifest and signature."""

    meta: dict[str, Any]
    files: list[tuple[str, bytes]] = field(default_factory=list)

    def add(self, name: str, data: bytes) -> None:
        if not safe_member(name) or name in (MANIFEST, SIGNATURE) or any(n == name for n, _ in self.files):
            raise ValueError(f"bundle member name {name!r} is not usable")
        self.files.append((name, data))

    def manifest_bytes(self, public_key: Ed25519PublicKey) -> bytes:
        manifest = {
            "format": FORMAT,
            **self.meta,
            "signature": {
                "algorithm": ALGORITHM,
                "key_id": key_id(public_key),
                "public_key": public_key_pem(public_key),
            },
            "files": [
                {"path": name, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
                for name, data in self.files
            ],
        }
        return (json.dumps(manifest, ensure_ascii=False, indent=2, allow_nan=False) + "\n").encode("utf-8")

    def write(self, target: Any, private_key: Ed25519PrivateKey) -> None:
        """Write the zip to ``target`` (a path or a binary file object)."""
        manifest = self.manifest_bytes(private_key.public_key())
        signature = base64.b64encode(private_key.sign(manifest)) + b"\n"
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(MANIFEST, manifest)
            archive.writestr(SIGNATURE, signature)
            for name, data in self.files:
                # Images and clips are compressed already: storing them saves the time for nothing.
                stored = PurePosixPath(name).suffix.lower() in {".jpg", ".jpeg", ".png", ".webp", ".mp4"}
                archive.writestr(name, data, compress_type=zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED)


@dataclass(frozen=True)
class BundleCheck:
    """The outcome: ``problems`` in the order found (the first names the first file that fails)."""

    problems: list[str]
    case_id: str | None = None
    files: int = 0
    key_id: str | None = None
    key_given: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems


def _read(archive: zipfile.ZipFile, name: str) -> bytes | None:
    try:
        return archive.read(name)
    except KeyError:
        return None


def verify_bundle(path: Path, *, public_key: Ed25519PublicKey | None = None) -> BundleCheck:
    """Check a bundle offline: member names, the manifest's signature (with ``public_key`` when given,
    else the key the manifest names), then every listed file's size and SHA-256, then that nothing
    unlisted rides along. Never raises for a bad bundle: every finding is a problem naming its file."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        return BundleCheck(problems=[f"{path}: not a readable zip file ({error})"])
    with archive:
        names = archive.namelist()
        unsafe = [name for name in names if not safe_member(name)]
        if unsafe:
            return BundleCheck(problems=[f"{name}: path outside the bundle" for name in unsafe])
        manifest_bytes = _read(archive, MANIFEST)
        if manifest_bytes is None:
            return BundleCheck(problems=[f"{MANIFEST}: missing"])
        signature_text = _read(archive, SIGNATURE)
        if signature_text is None:
            return BundleCheck(problems=[f"{SIGNATURE}: missing"])
        try:
            manifest = json.loads(manifest_bytes)
            listed = manifest["files"]
            embedded = load_public_key(manifest["signature"]["public_key"].encode())
            if not isinstance(listed, list):
                raise TypeError("files is not a list")
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            return BundleCheck(problems=[f"{MANIFEST}: not a bundle manifest ({error})"])
        key = public_key or embedded

        def check(problems: list[str]) -> BundleCheck:
            return BundleCheck(
                problems=problems,
                case_id=manifest.get("case_id"),
                files=len(listed),
                key_id=key_id(key),
                key_given=public_key is not None,
            )

        try:
            key.verify(base64.b64decode(signature_text.strip(), validate=True), manifest_bytes)
        except (InvalidSignature, ValueError):
            whose = "the given public key" if public_key is not None else "the key it names"
            return check([f"{MANIFEST}: the signature does not verify with {whose} (manifest edited or other signer)"])
        problems: list[str] = []
        seen = {MANIFEST, SIGNATURE}
        for item in listed:
            name = str(item.get("path", "")) if isinstance(item, dict) else ""
            if not safe_member(name):
                problems.append(f"{name or '?'}: listed path outside the bundle")
                continue
            seen.add(name)
            data = _read(archive, name)
            if data is None:
                problems.append(f"{name}: missing")
            elif len(data) != item.get("size") or hashlib.sha256(data).hexdigest() != item.get("sha256"):
                problems.append(f"{name}: SHA-256 does not match the manifest")
        problems += [f"{name}: not listed in the manifest" for name in names if name not in seen]
        return check(problems)
