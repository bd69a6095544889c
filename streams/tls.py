"""TLS for the worker's HTTP server (``DW_WEB_TLS_CERT`` and ``DW_WEB_TLS_KEY``) and for those who
call it: the other workers of the group and the CLI.

A caller trusts the system's certificate authorities and, besides, the server's own certificate
file, so that a self-signed certificate shared by a deployment's workers works without a CA.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from streams.errors import ConfigError


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """``ConfigError`` naming the settings when the certificate or key cannot be used."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(cert), str(key))
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"DW_WEB_TLS_CERT={cert}, DW_WEB_TLS_KEY={key}: not a usable certificate and key ({exc})"
        ) from None
    return context


def client_context(cert: Path | None) -> ssl.SSLContext | None:
    """How to verify a worker's certificate (None: the server speaks plain HTTP)."""
    if cert is None:
        return None
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=str(cert))
    return context
