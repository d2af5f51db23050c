"""Platform credentials and webhook secrets, sealed at rest with a key derived from
``RAPPORT_SECRET_KEY`` (Fernet: AES-128-CBC with HMAC-SHA256)."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app


class SealError(RuntimeError):
    """Stored credentials cannot be opened: the secret key changed since they were sealed."""


def _fernet(secret_key: str) -> Fernet:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"rapport credentials v1"
    ).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def seal(values: dict[str, Any], secret_key: str | None = None) -> str:
    key = secret_key or current_app.config["SECRET_KEY"]
    return _fernet(key).encrypt(json.dumps(values).encode()).decode()


def unseal(sealed: str, secret_key: str | None = None) -> dict[str, Any]:
    key = secret_key or current_app.config["SECRET_KEY"]
    try:
        return json.loads(_fernet(key).decrypt(sealed.encode()))
    except InvalidToken:
        raise SealError(
            "stored credentials cannot be decrypted with the current RAPPORT_SECRET_KEY; "
            "restore the key they were sealed with, or reconnect the clinic"
        )


def token_digest(token: str) -> str:
    """What is stored for a survey link: the SHA-256 of its random token."""
    return hashlib.sha256(token.encode()).hexdigest()
