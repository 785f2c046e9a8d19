"""Each user's defaults per agent runtime (Settings → Agentic Tools): the model, the permission mode and extra CLI
arguments of the sessions they create (`agent_sessions.add` copies them into a new session, the zone triggers' ones
included), and what the settings page shows about the CLI for this user."""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, select

from . import db, user_secrets
from .auth import require
from .config import Settings
from .errors import InvalidInput
from .models import Role, RuntimeSetting, User, utcnow
from .runtimes import registry
from .runtimes.base import Runtime
from .unix_accounts import AGENT_HOMES

MODEL_NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9._:/@\[\]-]{0,119}')
AGENT_RUNTIMES = ('claude-code', 'codex', 'gemini', 'opencode')  # one settings page each (not the shell)


@dataclass(frozen=True)
class Defaults:
    model: str | None = None
    permission_mode: str | None = None
    extra_args: tuple[str, ...] = ()


def clean_model(model: str | None) -> str | None:
    """A model name or None (the CLI's default). It goes on the CLI's command line, so it can never be a flag."""
    model = (model or '').strip() or None
    if model is not None and not MODEL_NAME.fullmatch(model):
        raise InvalidInput('A model name starts with a letter or digit and has only letters, digits and . _ - : / @ '
                           '[ ] (at most 120).')
    return model


def check_mode(adapter: Runtime, mode: str | None) -> str | None:
    if mode is not None and mode not in adapter.permission_modes:
        raise InvalidInput(f'{adapter.label} has no permission mode {mode!r}; choose one of '
                           f'{", ".join(adapter.permission_modes)}.')
    return mode


def parse_args(adapter: Runtime, text: str | list[str] | None) -> list[str]:
    """Extra arguments as typed (shell quoting) or as a list, checked against the runtime's refused flags."""
    if isinstance(text, list):
        args = [str(arg) for arg in text]
    else:
        try:
            args = shlex.split(text or '')
        except ValueError as error:
            raise InvalidInput(f'Extra arguments: {error} (quote as in a shell).') from None
    return adapter.check_extra_args(args)


def get(actor: User, runtime: str) -> dict[str, Any]:
    """`actor`'s settings for one runtime, with what the form needs to offer."""
    require(actor, Role.viewer, 'read settings')
    adapter = _agent(runtime)
    with db.read() as session:
        found = defaults(session, actor.id, adapter.name)
    return {'runtime': adapter.name, 'label': adapter.label, 'model': found.model,
            'permission_mode': found.permission_mode or adapter.default_permission_mode,
            'extra_args': shlex.join(found.extra_args), 'models': list(adapter.models),
            'modes': list(adapter.permission_modes), 'default_mode': adapter.default_permission_mode}


def save(actor: User, runtime: str, *, model: str | None, permission_mode: str | None,
         extra_args: str | list[str] | None) -> dict[str, Any]:
    """Store `actor`'s defaults for one runtime: sessions they create from now on start with them."""
    require(actor, Role.member, 'set defaults for agent sessions')
    adapter = _agent(runtime)
    row = RuntimeSetting(user_id=actor.id, runtime=adapter.name, model=clean_model(model),
                         permission_mode=check_mode(adapter, permission_mode or None),
                         extra_args=parse_args(adapter, extra_args), updated_at=utcnow())
    with db.transaction() as session:
        db.put(session, row, unique=('user_id', 'runtime'),
               update=('model', 'permission_mode', 'extra_args', 'updated_at'))
    return get(actor, adapter.name)


def form_defaults(actor: User) -> dict[str, dict[str, str | None]]:
    """`actor`'s model and permission mode per runtime they set them for: what the new-session form starts with."""
    require(actor, Role.viewer, 'read settings')
    with db.read() as session:
        rows = session.exec(select(RuntimeSetting).where(RuntimeSetting.user_id == actor.id)).all()
    return {row.runtime: {'model': row.model, 'permission_mode': row.permission_mode} for row in rows}


def defaults(session: Session, user_id: str, runtime: str) -> Defaults:
    """What a new session of this user's on this runtime starts with (nothing set: the runtime's own defaults)."""
    row = session.exec(select(RuntimeSetting).where(RuntimeSetting.user_id == user_id,
                                                    RuntimeSetting.runtime == runtime)).first()
    return Defaults(row.model, row.permission_mode, tuple(row.extra_args)) if row else Defaults()


def cli_state(settings: Settings, actor: User, runtime: str) -> dict[str, Any]:
    """The CLI as `actor`'s sessions find it: installed and its version (the pinned CLIs), a provider key from the
    user's own stored keys or the instance's agent environment (the variable's name, never its value), and a login of
    the CLI's own kept in the user's agent home. Blocking (runs `--version` once per install): call it from a worker
    thread."""
    require(actor, Role.viewer, 'read settings')
    adapter = _agent(runtime)
    status = registry.status(adapter, settings.agent_cli_dir)
    with db.read() as session:
        stored = user_secrets.names_for(session, actor.id)
    own = next((name for name in adapter.key_names if name in stored), None)
    key = next((name for name in adapter.key_names if settings.agent_env.get(name)), None)
    login = adapter.logged_in(settings.data_dir / AGENT_HOMES / actor.id)
    return {'installed': status.path is not None, 'version': status.version, 'install': status.install_command,
            'own_key': own, 'instance_key': key, 'cli_login': login}


def _agent(runtime: str) -> Runtime:
    if runtime not in AGENT_RUNTIMES:
        raise InvalidInput(f'No settings for the runtime {runtime!r}; choose one of {", ".join(AGENT_RUNTIMES)}.')
    return registry.get(runtime)
