"""A user's environment variables and provider API keys: stored sealed (`agor.secret_box`), write-only.

Each user manages only their own: add, replace, delete. Listing gives names, scope and when each was last set, never
a value. Values are opened only to start a process of the user they belong to (`agor.credentials`), and to hide them
from what such a process prints (`redactor`).
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete
from sqlmodel import Session, col, select

from . import db, ids
from .auth import require
from .config import Settings
from .errors import Forbidden, InvalidInput, NotFound
from .models import AgentSession, Role, SecretCheck, SessionEnvSelection, User, UserSecret, utcnow
from .secret_box import (CHECK, MASTER_SECRET_ENV, MASTER_SECRET_FILE, NoMasterSecret, SecretBox, UnreadableSecret,
                         WrongMasterSecret, master_secret)

NAME = re.compile(r'^[A-Z_][A-Z0-9_]*$')
MAX_NAME = 128
MAX_VALUE_BYTES = 10 * 1024
SCOPES = ('global', 'session')
PROVIDER_KEYS = {'ANTHROPIC_API_KEY': 'Anthropic', 'OPENAI_API_KEY': 'OpenAI', 'GEMINI_API_KEY': 'Google (Gemini)'}
_LOADER = 'it changes which programs or libraries a process loads'
_IDENTITY = 'the app sets it to the Unix account the process runs as'
BLOCKED = {
    'PATH': _LOADER, 'LD_PRELOAD': _LOADER, 'LD_LIBRARY_PATH': _LOADER, 'LD_AUDIT': _LOADER,
    'PYTHONPATH': _LOADER, 'PYTHONHOME': _LOADER, 'PYTHONSTARTUP': 'Python runs that file at start',
    'NODE_OPTIONS': 'it injects code into every Node program (the agent CLIs)', 'NODE_PATH': _LOADER,
    'PERL5OPT': 'it injects code into Perl', 'RUBYOPT': 'it injects code into Ruby',
    'HOME': _IDENTITY, 'USER': _IDENTITY, 'LOGNAME': _IDENTITY, 'SHELL': _IDENTITY,
    'BASH_ENV': 'bash runs that file at start', 'ENV': 'sh runs that file at start',
    'PROMPT_COMMAND': 'the shell runs it before every prompt', 'IFS': 'it changes how shells split words',
    'TMPDIR': 'the agent CLIs keep their state there',
    'CLAUDE_CONFIG_DIR': 'it changes where Claude Code reads its config and credentials',
    'CODEX_HOME': 'it changes where Codex reads its config and credentials',
    'GEMINI_CLI_HOME': 'it changes where Gemini reads its config and credentials',
}
BLOCKED_PREFIXES = {
    'GIT_': 'git reads configuration and commands (hooks, ssh, editors) from GIT_* variables',
    'DYLD_': _LOADER, 'OPENCODE_CONFIG': 'it changes where OpenCode reads its config',
    'XDG_': 'it changes where programs read their config and credentials',
    'AGOR_': 'the app sets AGOR_* variables itself',
}


# ---- what users do -------------------------------------------------------------------------------------------------

def set_env(actor: User, name: Any, value: Any = None, scope: Any = None) -> None:
    """Add or replace one of the actor's variables (a new one is Global unless `scope` says otherwise, a replaced one
    keeps its scope); without a value only its scope changes."""
    _put(actor, 'env', env_name(name), value, scope)


def set_key(actor: User, name: Any, value: Any) -> None:
    """Add or replace one of the actor's provider keys (ANTHROPIC_API_KEY, ... or a custom variable name)."""
    if value is None:
        raise InvalidInput('Paste the key first.')
    _put(actor, 'key', env_name(name), value, 'global')


def delete_env(actor: User, name: Any) -> None:
    _delete(actor, 'env', name)


def delete_key(actor: User, name: Any) -> None:
    _delete(actor, 'key', name)


def list_env(actor: User) -> list[dict[str, Any]]:
    return _list(actor, 'env')


def list_keys(actor: User) -> list[dict[str, Any]]:
    return _list(actor, 'key')


def session_env(actor: User, session_id: Any) -> dict[str, list[str]]:
    """The session's creator's Session-scoped variables (names) and which of them it opted into."""
    with db.read() as session:
        agent = _own_session(session, actor, session_id)
        available = session.exec(select(UserSecret.name).where(
            UserSecret.user_id == agent.created_by, UserSecret.kind == 'env', UserSecret.scope == 'session')
            .order_by(col(UserSecret.name))).all()
        chosen = _selected(session, agent.id)
    return {'available': list(available), 'selected': [name for name in available if name in chosen]}


def set_session_env(actor: User, session_id: Any, names: Any) -> None:
    """Which of the creator's Session-scoped variables the session gets from its next run on (creator only)."""
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise InvalidInput('Choose variables by name.')
    with db.transaction() as session:
        agent = _own_session(session, actor, session_id)
        available = set(session.exec(select(UserSecret.name).where(
            UserSecret.user_id == agent.created_by, UserSecret.kind == 'env', UserSecret.scope == 'session')).all())
        unknown = sorted(set(names) - available)
        if unknown:
            raise InvalidInput(f'You have no Session-scoped variable {", ".join(unknown)}.')
        session.execute(delete(SessionEnvSelection).where(col(SessionEnvSelection.session_id) == agent.id))
        for name in sorted(set(names)):
            session.add(SessionEnvSelection(session_id=agent.id, name=name))


# ---- what launching a process uses -----------------------------------------------------------------------------------

@dataclass
class UserEnv:
    """A user's variables for one process, later wins: Global variables, the session's opted-in Session variables,
    then provider keys."""
    env: dict[str, str]

    @property
    def values(self) -> list[str]:
        return list(self.env.values())


def opened_env(session: Session, user_id: str, session_id: str | None = None) -> UserEnv:
    """The user's variables and keys, decrypted (only to start a process of theirs)."""
    rows = _rows_for(session, user_id, session_id)
    sealer = box() if rows else None
    env: dict[str, str] = {}
    for row in rows:
        assert sealer is not None
        env[row.name] = sealer.open(row.user_id, row.kind, row.name, row.value)
    return UserEnv(env)


def names_for(session: Session, user_id: str, session_id: str | None = None) -> set[str]:
    """The names `opened_env` would set, without opening anything."""
    return {row.name for row in _rows_for(session, user_id, session_id)}


def _rows_for(session: Session, user_id: str, session_id: str | None) -> list[UserSecret]:
    rows = session.exec(select(UserSecret).where(UserSecret.user_id == user_id)).all()
    chosen = _selected(session, session_id) if session_id else set()
    return [row for row in rows if row.kind == 'env' and row.scope == 'global'] + \
        [row for row in rows if row.kind == 'env' and row.scope == 'session' and row.name in chosen] + \
        [row for row in rows if row.kind == 'key']


def redactor(values: list[str]):
    """text -> text with each of these values (4 characters or longer, longest first) replaced by ***."""
    secrets = sorted({value for value in values if len(value) >= 4}, key=len, reverse=True)
    pattern = re.compile('|'.join(map(re.escape, secrets))) if secrets else None

    def redact(text: str) -> str:
        return pattern.sub('***', text) if pattern and text else text
    return redact


def redact_data(data: Any, redact) -> Any:
    """`data` (a transcript event's JSON) with `redact` applied to every string in it."""
    if isinstance(data, str):
        return redact(data)
    if isinstance(data, dict):
        return {key: redact_data(value, redact) for key, value in data.items()}
    if isinstance(data, list):
        return [redact_data(value, redact) for value in data]
    return data


# ---- the master secret -----------------------------------------------------------------------------------------------

_box: SecretBox | None = None


def init(settings: Settings) -> SecretBox:
    """At start-up, after the database: load the master secret and check it against the stored check value (sealing
    one on the first start). Raises WrongMasterSecret saying what to do."""
    global _box
    given = settings.master_secret.get_secret_value() if settings.master_secret else None
    sealer = SecretBox(master_secret(settings.data_dir, given))
    if not check_or_seal(sealer):
        where = MASTER_SECRET_ENV if given else settings.data_dir / MASTER_SECRET_FILE
        raise WrongMasterSecret(
            f'The master secret ({where}) is not the one the stored '
            'secrets were encrypted with. Start with the original one; to change it, use '
            '`python -m agor.rotate_master_secret` (docs/security.md).')
    _box = sealer
    return sealer


def box() -> SecretBox:
    if _box is None:
        raise NoMasterSecret()
    return _box


def reset() -> None:
    global _box
    _box = None


def check_or_seal(sealer: SecretBox) -> bool:
    """False when the stored check value does not open with `sealer`; seals one on the first start (two processes
    starting together: one seals, the other checks against it)."""
    with db.transaction() as session:
        db.put(session, SecretCheck(id=1, value=sealer.seal(*CHECK, 'agor')), unique=('id',))
    with db.read() as session:
        row = session.get(SecretCheck, 1)
        assert row is not None
        return _opens_check(sealer, row.value)


def _opens_check(sealer: SecretBox, stored: str) -> bool:
    try:
        return sealer.open(*CHECK, stored) == 'agor'
    except UnreadableSecret:
        return False


def reseal_all(old: SecretBox, new: SecretBox, others: tuple[Callable[[Session, SecretBox, SecretBox], int], ...] = ()
               ) -> int:
    """Every stored value re-encrypted under `new`, in one transaction (nothing changes if one fails to open);
    `others` re-encrypt the other tables sealed with the same key (gateway channels, MCP servers and grants) in it
    too."""
    with db.transaction() as session:
        check = session.get(SecretCheck, 1)
        if check is None or not _opens_check(old, check.value):
            raise UnreadableSecret('The check value does not open with the current master secret.')
        check.value = new.seal(*CHECK, 'agor')
        rows = session.exec(select(UserSecret)).all()
        for row in rows:
            row.value = new.seal(row.user_id, row.kind, row.name, old.open(row.user_id, row.kind, row.name, row.value))
        return len(rows) + sum(reseal(session, old, new) for reseal in others)


# ---- helpers ---------------------------------------------------------------------------------------------------------

def env_name(name: Any) -> str:
    """A variable name users may set, or why not."""
    if not isinstance(name, str) or not NAME.match(name.strip()) or len(name.strip()) > MAX_NAME:
        raise InvalidInput('A variable name has only capital letters, digits and _, and does not start with a digit '
                           '(e.g. GITHUB_TOKEN).')
    name = name.strip()
    reason = BLOCKED.get(name) or next((why for prefix, why in BLOCKED_PREFIXES.items() if name.startswith(prefix)),
                                       None)
    if reason:
        raise InvalidInput(f'{name} cannot be set here: {reason}.')
    return name


def _value(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput('Enter a value.')
    if len(value.encode()) > MAX_VALUE_BYTES:
        raise InvalidInput('A value is limited to 10 KB.')
    if '\0' in value:
        raise InvalidInput('A value cannot contain a NUL character.')
    return value


def _put(actor: User, kind: str, name: str, value: Any, scope: Any) -> None:
    require(actor, Role.member, 'store secrets')
    if scope is not None and scope not in SCOPES:
        raise InvalidInput('Choose the scope Global or Session.')
    sealed = box().seal(actor.id, kind, name, _value(value)) if value is not None else None
    with db.transaction() as session:
        row = _row(session, actor.id, kind, name)
        if row is None:
            if sealed is None:
                raise InvalidInput('Enter a value.')
            row = UserSecret(user_id=actor.id, kind=kind, name=name, value=sealed)
        row.scope, row.updated_at = scope or row.scope or 'global', utcnow()
        row.value = sealed or row.value
        session.add(row)


def _delete(actor: User, kind: str, name: Any) -> None:
    require(actor, Role.member, 'store secrets')
    with db.transaction() as session:
        row = _row(session, actor.id, kind, name) if isinstance(name, str) else None
        if row is None:
            raise NotFound(f'You have no {"key" if kind == "key" else "variable"} {name}.')
        session.delete(row)


def _list(actor: User, kind: str) -> list[dict[str, Any]]:
    with db.read() as session:
        rows = session.exec(select(UserSecret).where(UserSecret.user_id == actor.id, UserSecret.kind == kind)
                            .order_by(col(UserSecret.name))).all()
    return [{'name': row.name, 'scope': row.scope, 'updated_at': row.updated_at.isoformat()} for row in rows]


def _row(session: Session, user_id: str, kind: str, name: str) -> UserSecret | None:
    return session.exec(select(UserSecret).where(UserSecret.user_id == user_id, UserSecret.kind == kind,
                                                 UserSecret.name == name)).first()


def _selected(session: Session, session_id: str) -> set[str]:
    return set(session.exec(select(SessionEnvSelection.name).where(SessionEnvSelection.session_id == session_id)))


def _own_session(session: Session, actor: User, session_id: Any) -> AgentSession:
    """The session, for its creator only: its variables are the creator's."""
    require(actor, Role.member, 'choose session variables')
    agent = ids.load(session, AgentSession, session_id, 'session')
    if agent.created_by != actor.id:
        raise Forbidden("Only the session's creator chooses its variables: they are the creator's.")
    return agent
