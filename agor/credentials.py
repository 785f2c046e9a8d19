"""The environment an agent or terminal acts with, merged in one place: the app's environment without its secrets,
then the operator's gateway variables (`AGOR_AGENT_ENV_<NAME>=value` becomes `<NAME>=value`, e.g. a provider key or
base URL every agent may use). Per-user and per-session variables merge on top of these once users can store
their own (the credentials capability); nothing here is ever logged."""
from __future__ import annotations

import os
import re

from .models import User

GATEWAY_PREFIX = 'AGOR_AGENT_ENV_'
PRIVATE_PREFIXES = ('AGOR_', 'PYTEST_', 'NICEGUI_', 'TMUX', 'SUDO_', 'GIT_CONFIG_')
PRIVATE_WORDS = re.compile(r'SECRET|TOKEN|PASSWORD|PASSWD|KEY|CREDENTIAL|COOKIE|DATABASE_URL|DSN', re.I)
PASSED_AGOR_VARS = ('AGOR_AGENT_MAX_RETRIES',)  # settings of the runtimes themselves


def app_env_without_secrets() -> dict[str, str]:
    return {name: value for name, value in os.environ.items()
            if name in PASSED_AGOR_VARS or not name.startswith(PRIVATE_PREFIXES) and not PRIVATE_WORDS.search(name)}


def gateway_env() -> dict[str, str]:
    return {name.removeprefix(GATEWAY_PREFIX): value for name, value in os.environ.items()
            if name.startswith(GATEWAY_PREFIX) and len(name) > len(GATEWAY_PREFIX)}


def merged_env(user: User) -> dict[str, str]:
    """gateway over app: what `user`'s agents and terminals start with."""
    env = app_env_without_secrets()
    env.update(gateway_env())
    env.update(AGOR_USER=user.name, AGOR_USER_EMAIL=user.email)
    return env
