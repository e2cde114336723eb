"""Webhook URL policy: no requests from the service into its own network unless explicitly allowed."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from service.core.errors import Invalid

Resolver = Callable[..., list[tuple[Any, ...]]]


def _refused(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    # is_global is False for loopback, RFC 1918, link-local (cloud metadata), CGNAT, ULA, unspecified …
    return not ip.is_global or ip.is_multicast


def check_webhook_url(url: str, *, allow_private: bool, resolve: Resolver = socket.getaddrinfo) -> None:
    """Raise Invalid unless ``url`` is http(s) and every address it resolves to is public."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise Invalid(f"webhook URL must be http or https, not {parts.scheme or 'none'!r}")
    if not parts.hostname:
        raise Invalid("webhook URL has no host")
    if parts.username or parts.password:
        raise Invalid("webhook URL must not carry credentials; authenticate with the signature")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise Invalid("webhook URL has an invalid port") from None
    if allow_private:
        return
    host = parts.hostname
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = resolve(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as error:
            raise Invalid(f"cannot resolve webhook host {host!r}: {error}") from None
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
        if not addresses:
            raise Invalid(f"webhook host {host!r} has no address")
    for address in addresses:
        if _refused(address):
            raise Invalid(
                f"webhook host {host!r} resolves to non-public address {address}; "
                "set STREETWATCH_WEBHOOK_ALLOW_PRIVATE=1 to allow private endpoints"
            )
