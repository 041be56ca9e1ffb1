"""Encryption at rest with key rotation (MultiFernet) and HMAC blind indexes for exact-match lookups."""

import hashlib
import hmac
import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import Text, TypeDecorator


class KeyConfigError(RuntimeError):
    """The configured keys cannot be used."""


class _Keys:
    def __init__(self) -> None:
        self.fernet: MultiFernet | None = None
        self.hmac_key: bytes | None = None


_keys = _Keys()


def configure(encryption_keys: str, hmac_key: str) -> None:
    """Install the process's keys: the first Fernet key encrypts, every listed key decrypts."""
    try:
        fernets = [Fernet(k.strip().encode()) for k in encryption_keys.split(",") if k.strip()]
    except ValueError as exc:
        raise KeyConfigError(
            "SANDAN_ENCRYPTION_KEYS must be url-safe base64 32-byte Fernet keys, comma-separated"
        ) from exc
    if not fernets:
        raise KeyConfigError("SANDAN_ENCRYPTION_KEYS is empty")
    _keys.fernet = MultiFernet(fernets)
    _keys.hmac_key = hmac_key.encode()


def _fernet() -> MultiFernet:
    if _keys.fernet is None:
        raise KeyConfigError("encryption keys are not configured (create_app configures them)")
    return _keys.fernet


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise KeyConfigError("a stored value cannot be decrypted with any configured key") from exc


def rotate(token: str) -> str:
    """Re-encrypt a stored value under the current (first) key."""
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken as exc:
        raise KeyConfigError("a stored value cannot be decrypted with any configured key") from exc


def blind_index(kind: str, normalized_value: str) -> str:
    """Return a keyed hash for exact-match lookup; the kind separates domains so equal values don't link."""
    return keyed_digest(kind, normalized_value.encode())


def keyed_digest(domain: str, data: bytes) -> str:
    """A keyed SHA-256 of ``data`` in ``domain`` (HMAC under the HMAC key). Unkeyed, a digest of anything
    holding a guessable personal value (an ID number, a phone number) lets whoever reads it test guesses."""
    if _keys.hmac_key is None:
        raise KeyConfigError("HMAC key is not configured")
    return hmac.new(_keys.hmac_key, domain.encode() + b":" + data, hashlib.sha256).hexdigest()


class EncryptedText(TypeDecorator):
    """A column whose value is stored as Fernet ciphertext and read back as plain text."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else encrypt(value)

    def process_result_value(self, value, dialect):
        return None if value is None else decrypt(value)


class EncryptedJSON(EncryptedText):
    """A JSON value (a purchase's drug list) stored as the Fernet ciphertext of its JSON text: one value, so
    everything EncryptedText covers (key rotation, erasure to NULL) covers it."""

    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        return super().process_bind_param(json.dumps(value, ensure_ascii=False), dialect)

    def process_result_value(self, value, dialect):
        text = super().process_result_value(value, dialect)
        return None if text is None else json.loads(text)
