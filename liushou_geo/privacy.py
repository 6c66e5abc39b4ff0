"""Keyed hashing of ID numbers, so the store never holds a raw one.

The key comes from $LIUSHOU_ID_KEY, else from a key file ($LIUSHOU_ID_KEY_FILE,
default ``data/id.key``) created with a random key on first use. Keep the key
file with the database backups: without it new extracts cannot be matched to
children already loaded.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from .settings import REPO_ROOT

DEFAULT_KEY_FILE = REPO_ROOT / "data" / "id.key"


def _key_file() -> Path:
    env = os.environ.get("LIUSHOU_ID_KEY_FILE")
    return Path(env) if env else DEFAULT_KEY_FILE


def load_key() -> bytes:
    """The HMAC key (created on first use when no key is configured)."""
    env = os.environ.get("LIUSHOU_ID_KEY")
    if env:
        return env.encode("utf-8")
    path = _key_file()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip().encode("utf-8")


class IdHasher:
    """child_key for a valid, normalised ID number."""

    def __init__(self, key: bytes | None = None):
        self._key = key if key is not None else load_key()

    def __call__(self, id_number: str) -> str:
        return hmac.new(self._key, id_number.encode("ascii"), hashlib.sha256).hexdigest()[:32]
