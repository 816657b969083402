"""API keys: `cse_<key id>_<secret>`, shown once at creation; the store keeps the SHA-256 of the whole key
(the secret is 32 random bytes, so a fast hash cannot be brute-forced) with the role, looked up by key id
and compared in constant time. The file is created owner-only (0600)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path


class Role(IntEnum):
    """Ordered: each role may do what the roles below it may."""

    viewer = 1
    trader = 2
    admin = 3


@dataclass(frozen=True)
class Principal:
    key_id: str
    role: Role
    name: str


class KeyStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._read: tuple[tuple[int, int, int], dict[str, dict[str, str]]] | None = None

    def _load(self) -> dict[str, dict[str, str]]:
        """The stored keys, read again only when the file changed (a key created by `cse api-key create` in
        another process counts from the next request; every request reading the file cost more than the
        rest of a small query)."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return {}
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if self._read is None or self._read[0] != stamp:
            keys: dict[str, dict[str, str]] = json.loads(self.path.read_text())
            self._read = (stamp, keys)
        return self._read[1]

    def create(self, role: Role, name: str = "") -> str:
        """A new key of `role`; returns the key (the only time it is ever visible)."""
        keys = dict(self._load())
        key_id = secrets.token_hex(6)
        key = f"cse_{key_id}_{secrets.token_urlsafe(32)}"
        keys[key_id] = {"sha256": _digest(key), "role": role.name, "name": name or key_id}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(keys, f, indent=2, sort_keys=True)
        os.replace(tmp, self.path)
        return key

    def authenticate(self, key: str | None) -> Principal | None:
        """The principal of a presented key, or None (unknown, malformed, or wrong secret)."""
        if not key or not key.startswith("cse_"):
            return None
        key_id = key[4:].split("_", 1)[0]
        entry = self._load().get(key_id)
        if entry is None or not hmac.compare_digest(entry["sha256"], _digest(key)):
            return None
        return Principal(key_id, Role[entry["role"]], entry["name"])


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
