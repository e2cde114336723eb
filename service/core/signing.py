"""The service's Ed25519 key that signs case bundles.

``STREETWATCH_SIGNING_KEY`` (PEM text, or the path of a PEM file) wins. Without it the key is made on the
first start: on SQLite in a file beside the database (``<db>.bundle-key.pem``, mode 0600), on PostgreSQL in
the database itself (table ``service_keys``), where replicas on other machines must sign with the same key
and no file lies beside the database. Concurrent first starts agree on one key: the file is created
exclusively, the row inserted once, and the loser of either race loads the winner's key.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from service.core.config import Settings
from service.core.db import Database
from service.models import ServiceKey
from zones.errors import InputError

KEY_NAME: Final = "bundle-signing"
_FIELD: Final = "STREETWATCH_SIGNING_KEY"


def _pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _load(pem: bytes, *, where: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as error:
        raise InputError(f"{where}: not an unencrypted PEM private key ({error})", field=_FIELD) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError(f"{where}: an Ed25519 key is needed, not {type(key).__name__}", field=_FIELD)
    return key


def key_file_for(database_url: str) -> Path | None:
    """Where a SQLite store keeps its key; None for other databases."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database:
        return None
    return Path(url.database).expanduser().resolve().with_name(Path(url.database).name + ".bundle-key.pem")


def _from_file(path: Path) -> Ed25519PrivateKey:
    try:
        # O_EXCL: of two processes starting at once only one writes the key; the other reads it.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _load(path.read_bytes(), where=str(path))
    key = Ed25519PrivateKey.generate()
    with os.fdopen(fd, "wb") as handle:
        handle.write(_pem(key))
        handle.flush()
        os.fsync(handle.fileno())
    return key


def _from_database(db: Database, now: datetime) -> Ed25519PrivateKey:
    with db.reading() as session:
        row = session.get(ServiceKey, KEY_NAME)
        if row is not None:
            return _load(row.private_pem.encode(), where=f"service_keys/{KEY_NAME}")
    try:
        with db.writing() as session:
            key = Ed25519PrivateKey.generate()
            session.add(ServiceKey(name=KEY_NAME, private_pem=_pem(key).decode(), created_at=now))
        return key
    except IntegrityError:  # another replica made it first
        return _from_database(db, now)


def bundle_signing_key(settings: Settings, db: Database, *, now: datetime) -> Ed25519PrivateKey:
    configured = (settings.signing_key or "").strip()
    if configured.startswith("-----BEGIN"):
        return _load(configured.encode(), where=_FIELD)
    if configured:
        path = Path(configured).expanduser()
        try:
            return _load(path.read_bytes(), where=str(path))
        except OSError as error:
            raise InputError(f"cannot read the key file {path}: {error.strerror or error}", field=_FIELD) from None
    beside = key_file_for(settings.database_url)
    return _from_file(beside) if beside is not None else _from_database(db, now)
