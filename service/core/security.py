"""Bearer tokens, Standard Webhooks signatures and CSRF tokens (all stdlib: hashlib/hmac/secrets)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Final, Literal, get_args

Role = Literal["camera", "operator", "officer", "supervisor", "admin"]
ROLES: Final[tuple[Role, ...]] = get_args(Role)

TOKEN_PREFIX: Final = "sw_"
WEBHOOK_SECRET_PREFIX: Final = "whsec_"


def new_token() -> str:
    """A new bearer token: 256 random bits, URL-safe."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    # Tokens carry 256 bits of entropy, so a fast unsalted hash is enough: nothing to brute-force.
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def same_digest(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("ascii", "replace"), b.encode("ascii", "replace"))


def new_webhook_secret() -> str:
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def _secret_bytes(secret: str) -> bytes:
    body = secret.removeprefix(WEBHOOK_SECRET_PREFIX)
    return base64.b64decode(body)


def sign_webhook(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` header value: ``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``."""
    signed = f"{msg_id}.{timestamp}.{body}".encode()
    digest = hmac.new(_secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def webhook_headers(secret: str, msg_id: str, timestamp: int, body: str) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign_webhook(secret, msg_id, timestamp, body),
        "content-type": "application/json",
    }


def csrf_token(secret_key: str, token_sha256: str) -> str:
    """Bound to the session's token; cookie-authenticated writes must echo it in X-CSRF-Token."""
    return hmac.new(secret_key.encode(), b"csrf:" + token_sha256.encode(), hashlib.sha256).hexdigest()[:40]


class Principal:
    """Who is calling: resolved from a bearer token or the session cookie."""

    __slots__ = ("name", "role", "team", "token_id", "token_sha256")

    def __init__(self, *, token_id: str, name: str, role: Role, team: str | None, token_sha256: str) -> None:
        self.token_id = token_id
        self.name = name
        self.role = role
        self.team = team
        self.token_sha256 = token_sha256

    def __repr__(self) -> str:
        return f"Principal(name={self.name!r}, role={self.role!r}, team={self.team!r})"
