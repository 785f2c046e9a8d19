"""Users' secrets at rest: AES-256-GCM under a key derived (HKDF-SHA256) from the instance master secret.

The master secret is `AGOR_MASTER_SECRET`, else `data/master_secret` (0600, generated at first start, next to the
session secret). Each value's associated data is its owner's id, its purpose and its name, so a stored value copied
to another user, another kind of secret or another name fails to decrypt. The database keeps one check value sealed
with the key: started with a different master secret, the app stops with a clear message instead of reading garbage
(`WrongMasterSecret`, from `agor.user_secrets.init`). `python -m agor.rotate_master_secret` re-encrypts everything
under a new one.
"""
from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import DomainError

MASTER_SECRET_ENV = 'AGOR_MASTER_SECRET'
MASTER_SECRET_FILE = 'master_secret'
MIN_MASTER_SECRET = 32  # characters
VERSION = 'v1'
CHECK = ('instance', 'check', 'master-secret')  # owner, purpose, name of the check value


class WrongMasterSecret(Exception):
    """The master secret is not the one the stored secrets were sealed with."""


class NoMasterSecret(DomainError, status=503):
    """No master secret is configured, so nothing can be sealed or unsealed."""

    def __init__(self) -> None:
        super().__init__(f'Secrets cannot be stored: the app has no master secret. Set {MASTER_SECRET_ENV} '
                         f'(at least {MIN_MASTER_SECRET} characters) or let the app create data/{MASTER_SECRET_FILE}.')


class UnreadableSecret(DomainError):
    """A stored value that does not decrypt under its owner, purpose and name (copied, altered, or a wrong key)."""


class SecretBox:
    def __init__(self, master_secret: str) -> None:
        if len(master_secret) < MIN_MASTER_SECRET:
            raise WrongMasterSecret(f'{MASTER_SECRET_ENV} must be at least {MIN_MASTER_SECRET} characters.')
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b'agor secret box v1') \
            .derive(master_secret.encode())
        self._aead = AESGCM(key)

    def seal(self, owner: str, purpose: str, name: str, value: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, value.encode(), _associated(owner, purpose, name))
        return f'{VERSION}:{base64.urlsafe_b64encode(nonce + sealed).decode()}'

    def open(self, owner: str, purpose: str, name: str, stored: str) -> str:
        version, _, body = stored.partition(':')
        try:
            raw = base64.urlsafe_b64decode(body.encode())
            if version != VERSION or len(raw) < 28:
                raise ValueError(version)
            return self._aead.decrypt(raw[:12], raw[12:], _associated(owner, purpose, name)).decode()
        except (InvalidTag, ValueError):
            raise UnreadableSecret(f'The stored value of {name} cannot be read (it was altered or moved); '
                                   'replace it.') from None


def _associated(owner: str, purpose: str, name: str) -> bytes:
    return '\0'.join((VERSION, owner, purpose, name)).encode()


def master_secret(data_dir: Path, given: str | None) -> str:
    """AGOR_MASTER_SECRET (`given`, `Settings.master_secret`), else the data dir's master_secret file (created once,
    mode 0600)."""
    if given:
        return given
    path = data_dir / MASTER_SECRET_FILE
    try:  # created under its own name at once: two processes starting together read the same one
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, 'w') as handle:
        handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def write_secret_file(path: Path, value: str) -> None:
    """A new file only its owner can read, written in full before it takes the name (an existing one is replaced)."""
    partial = path.with_name(path.name + '.new')
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, 'w') as handle:
        handle.write(value)
    os.replace(partial, path)
