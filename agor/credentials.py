"""The environment an agent or terminal acts with, merged in one place.

It starts from an ALLOWLIST of the app's environment (locale, time zone, PATH, proxies and CA bundles: names that
carry no secrets by convention), never the whole of it, then, later wins:
- the identity of the Unix account it runs as (HOME, USER, LOGNAME, SHELL), and for an account other than the app's,
  `safe.directory=*` for git (checkouts stay owned by the app's account);
- the instance's variables (`Settings.agent_env`: `AGOR_AGENT_ENV_<NAME>=value` becomes `<NAME>=value`, set at
  start-up with `configure`);
- for a session a gateway channel started, that channel's variables (`agor.gateway.channels`, sealed like the
  user's);
- the user's own (`agor.user_secrets`): their Global variables, the Session variables the session opted into, their
  provider keys. For a session the user is always its creator, whoever prompted it;
- `AGOR_USER` and `AGOR_USER_EMAIL`.
Anything else in the app's environment (`DATABASE_URL`, `MYSQL_PWD`, `GH_PAT`, ...) never reaches them; nothing here
is ever logged.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import Session

from . import db, user_secrets
from .gateway import channels as gateway_channels
from .errors import InvalidInput
from .models import User
from .runtimes.base import Runtime
from .unix_accounts import Account, login_env

ALLOWED_NAMES = {
    'PATH', 'LANG', 'LANGUAGE', 'TZ', 'TERM', 'COLORTERM',
    'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'ALL_PROXY', 'http_proxy', 'https_proxy', 'no_proxy', 'all_proxy',
    'SSL_CERT_FILE', 'SSL_CERT_DIR', 'NODE_EXTRA_CA_CERTS', 'REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE',
}
ALLOWED_PATTERN = re.compile(r'^LC_[A-Z_]+$')
GIT_TRUSTS_CHECKOUTS = {'GIT_CONFIG_COUNT': '1', 'GIT_CONFIG_KEY_0': 'safe.directory', 'GIT_CONFIG_VALUE_0': '*'}

instance: dict[str, str] = {}  # the operator's AGOR_AGENT_ENV_* variables (configure)
agent_homes: list[Path] = []  # where users' agent homes are (a CLI logged in there needs no key)


def configure(agent_env: Mapping[str, str], homes: Path | None = None) -> None:
    """At start-up: the instance's variables every agent and terminal starts with (`Settings.agent_env`), and the
    directory of the users' agent homes."""
    instance.clear()
    instance.update(agent_env)
    agent_homes[:] = [homes] if homes else []


@dataclass
class Launch:
    """A process's environment, and the user's secret values in it (to hide from what the process prints)."""
    env: dict[str, str]
    secrets: list[str] = field(default_factory=list)


def allowed_app_env() -> dict[str, str]:
    """The part of the app's environment agents and terminals may see."""
    return {name: value for name, value in os.environ.items() if name in ALLOWED_NAMES or ALLOWED_PATTERN.match(name)}


def merged_env(user: User, account: Account, *, session_id: str | None = None) -> Launch:
    """What a process of `user` (a session's creator, or a terminal's opener) starts with when it runs as `account`;
    `session_id` adds its channel's variables and the Session variables that session opted into."""
    env = {**login_env(account), **allowed_app_env()}  # the allowlist has no identity variables
    if not account.is_current:
        env.update(GIT_TRUSTS_CHECKOUTS)
    env.update(instance)
    with db.read() as session:
        channel, own = _secret_layers(session, user.id, session_id)
    env.update(channel)
    env.update(own.env)
    env.update(AGOR_USER=user.name, AGOR_USER_EMAIL=user.email)
    return Launch(env, [*channel.values(), *own.values])


def secret_values(session: Session, user_id: str, session_id: str | None) -> list[str]:
    """The secret values a run of `user_id`'s in that session gets: what anything shown of the run hides."""
    channel, own = _secret_layers(session, user_id, session_id)
    return [*channel.values(), *own.values]


def _secret_layers(session: Session, user_id: str, session_id: str | None):
    return gateway_channels.env_for_session(session, session_id), user_secrets.opened_env(session, user_id, session_id)


def require_provider_key(session: Session, runtime: Runtime, creator: User, actor: User,
                         session_id: str | None = None) -> None:
    """Refuse a run of `runtime` that would have no provider key: neither the instance (or the session's channel)
    nor the session's creator has one of the variables it reads, and the creator's agent home holds no login of the
    CLI's own. Names only: nothing is decrypted."""
    if not runtime.key_names:
        return
    names = set(instance) | gateway_channels.env_names_for_session(session, session_id) | \
        user_secrets.names_for(session, creator.id, session_id)
    if names & set(runtime.key_names) or any(runtime.logged_in(homes / creator.id) for homes in agent_homes):
        return
    setting = f'{runtime.key_names[0]} under Settings → Agentic Tools → API Keys'
    if actor.id == creator.id:
        raise InvalidInput(f'{runtime.label} needs an API key: add {setting}.')
    raise InvalidInput(f'{runtime.label} runs as {creator.name}, who has no API key for it: {creator.name} adds '
                       f'{setting}.')
