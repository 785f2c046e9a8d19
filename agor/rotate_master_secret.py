"""Re-encrypt every stored secret under a new master secret, in one transaction. Stop the app first.

    python -m agor.rotate_master_secret [--data-dir DIR]

The current secret is read as the app reads it (AGOR_MASTER_SECRET, else data/master_secret). The new one is
AGOR_NEW_MASTER_SECRET if set, else a generated one written to data/master_secret (0600). With AGOR_MASTER_SECRET
in use, AGOR_NEW_MASTER_SECRET is required; start the app with AGOR_MASTER_SECRET set to it afterwards.
"""
from __future__ import annotations

import argparse
import os
import secrets
import sys

from . import db, mcp_sealed, user_secrets
from .gateway import channels as gateway_channels
from .config import SettingsError, load_settings
from .secret_box import (MASTER_SECRET_ENV, MASTER_SECRET_FILE, SecretBox, UnreadableSecret, WrongMasterSecret,
                         master_secret, write_secret_file)

NEW_SECRET_ENV = 'AGOR_NEW_MASTER_SECRET'


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog='python -m agor.rotate_master_secret', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data-dir', help='the data dir of the app (default: AGOR_DATA_DIR or ./data)')
    args = parser.parse_args(argv)
    try:
        settings = load_settings(data_dir=args.data_dir)
    except SettingsError as error:
        print(f'Cannot rotate: {error}', file=sys.stderr)
        return 2
    current = settings.master_secret.get_secret_value() if settings.master_secret else None
    from_env = current is not None
    new_secret = os.environ.get(NEW_SECRET_ENV, '').strip()
    if from_env and not new_secret:
        print(f'Cannot rotate: {MASTER_SECRET_ENV} is set, so set {NEW_SECRET_ENV} to the new secret too.',
              file=sys.stderr)
        return 2
    db.init(settings.database_url)
    new_secret = new_secret or secrets.token_urlsafe(48)
    try:
        old = SecretBox(master_secret(settings.data_dir, current))
        new = SecretBox(new_secret)
    except WrongMasterSecret as error:
        print(f'Cannot rotate: {error}', file=sys.stderr)
        return 2
    path = settings.data_dir / MASTER_SECRET_FILE
    pending = path.with_name(MASTER_SECRET_FILE + '.next')  # the new secret is on disk before the commit
    if not from_env:
        write_secret_file(pending, new_secret)
    try:
        count = user_secrets.reseal_all(old, new, (gateway_channels.reseal, mcp_sealed.reseal))
    except UnreadableSecret as error:
        pending.unlink(missing_ok=True)
        print(f'Cannot rotate, nothing was changed: {error.message}', file=sys.stderr)
        return 1
    if not from_env:
        os.replace(pending, path)
        print(f'Re-encrypted {count} secrets; the new master secret is in {path}.')
    else:
        print(f'Re-encrypted {count} secrets; start the app with {MASTER_SECRET_ENV} set to the new secret.')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
