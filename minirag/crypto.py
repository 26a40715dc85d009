"""Secrets at rest: Fernet encryption with key rotation.

`MINIRAG_ENCRYPTION_KEYS` lists Fernet keys newest first. The first encrypts; every key decrypts,
so a new key can be put in front and `manage.py rotate_keys` re-encrypts what is stored before the
old key is dropped.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver


class DecryptionError(Exception):
    """A stored secret could not be decrypted with any configured key."""


@lru_cache(maxsize=1)
def _fernets() -> tuple[Fernet, ...]:
    """One Fernet per configured key, newest first."""
    keys = [key.strip() for key in settings.ENCRYPTION_KEYS if key.strip()]
    if not keys:
        raise ImproperlyConfigured("MINIRAG_ENCRYPTION_KEYS holds no key.")
    try:
        return tuple(Fernet(key.encode()) for key in keys)
    except ValueError as exc:
        raise ImproperlyConfigured(
            "MINIRAG_ENCRYPTION_KEYS must be comma-separated Fernet keys (32 url-safe base64 bytes)."
        ) from exc


@lru_cache(maxsize=1)
def _multi_fernet() -> MultiFernet:
    return MultiFernet(list(_fernets()))


@receiver(setting_changed)
def _forget_keys_on_settings_change(*, setting: str, **kwargs: Any) -> None:
    if setting == "ENCRYPTION_KEYS":
        _fernets.cache_clear()
        _multi_fernet.cache_clear()


def configured_key_count() -> int:
    """How many keys MINIRAG_ENCRYPTION_KEYS holds (1 means there is nothing to rotate from)."""
    return len(_fernets())


def is_under_newest_key(ciphertext: str) -> bool:
    """Whether `ciphertext` was encrypted with the first (newest) key, i.e. needs no rotation."""
    try:
        _fernets()[0].decrypt(ciphertext.encode())
    except InvalidToken:
        return False
    return True


def encrypt_text(plaintext: str) -> str:
    return _multi_fernet().encrypt(plaintext.encode()).decode()


def decrypt_text(ciphertext: str) -> str:
    try:
        return _multi_fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise DecryptionError("Stored secret cannot be decrypted with the configured keys.") from exc


def encrypt_json(value: Any) -> str:
    return encrypt_text(json.dumps(value, separators=(",", ":"), sort_keys=True))


def decrypt_json(ciphertext: str) -> Any:
    return json.loads(decrypt_text(ciphertext))


def reencrypt(ciphertext: str) -> str:
    """The same secret encrypted with the newest key (for `rotate_keys`)."""
    try:
        return _multi_fernet().rotate(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise DecryptionError("Stored secret cannot be decrypted with the configured keys.") from exc
