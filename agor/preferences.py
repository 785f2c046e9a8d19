"""Per-user settings kept in `user.preferences`; today the chime (Audio settings)."""
from __future__ import annotations

from typing import Any

from . import db
from .errors import InvalidInput
from .models import User

SOUNDS = ('gentle-chime', 'bell', 'coin', 'success')
CHIME_DEFAULTS = {'enabled': False, 'sound': 'gentle-chime', 'volume': 0.5, 'min_seconds': 5}


def chime(user: User) -> dict[str, Any]:
    return {**CHIME_DEFAULTS, **(user.preferences or {}).get('chime', {})}


def set_chime(user: User, *, enabled: bool, sound: str, volume: float, min_seconds: float) -> dict[str, Any]:
    if sound not in SOUNDS:
        raise InvalidInput(f'Pick one of the sounds: {", ".join(SOUNDS)}.')
    try:
        volume, min_seconds = float(volume), float(min_seconds)
    except (TypeError, ValueError):
        raise InvalidInput('Volume and minimum run length are numbers.') from None
    if not 0 <= volume <= 1 or not 0 <= min_seconds <= 3600:
        raise InvalidInput('Volume is between 0 and 100 %, the minimum run length between 0 s and an hour.')
    settings = {'enabled': bool(enabled), 'sound': sound, 'volume': round(volume, 2), 'min_seconds': min_seconds}
    with db.transaction() as session:
        fresh = session.get(User, user.id)
        assert fresh is not None
        fresh.preferences = {**(fresh.preferences or {}), 'chime': settings}
    user.preferences = {**(user.preferences or {}), 'chime': settings}
    return settings
