"""The environment an agent or terminal acts with, merged in one place.

It starts from an ALLOWLIST of the app's environment (locale, time zone, PATH, proxies and CA bundles: names that
carry no secrets by convention), never the whole of it, then:
- the identity of the Unix account it runs as (HOME, USER, LOGNAME, SHELL), and for an account other than the app's,
  `safe.directory=*` for git (checkouts stay owned by the app's account);
- the operator's gateway variables (`Settings.agent_env`: `AGOR_AGENT_ENV_<NAME>=value` becomes `<NAME>=value`,
  e.g. a provider key or base URL every agent may use);
- `AGOR_USER` and `AGOR_USER_EMAIL`.
Per-user and per-session variables merge on top of these once users can store their own (the credentials
capability). Anything else in the app's environment (`DATABASE_URL`, `MYSQL_PWD`, `GH_PAT`, ...) never reaches them;
nothing here is ever logged.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping

from .models import User
from .unix_accounts import Account, login_env

ALLOWED_NAMES = {
    'PATH', 'LANG', 'LANGUAGE', 'TZ', 'TERM', 'COLORTERM',
    'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'ALL_PROXY', 'http_proxy', 'https_proxy', 'no_proxy', 'all_proxy',
    'SSL_CERT_FILE', 'SSL_CERT_DIR', 'NODE_EXTRA_CA_CERTS', 'REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE',
}
ALLOWED_PATTERN = re.compile(r'^LC_[A-Z_]+$')
GIT_TRUSTS_CHECKOUTS = {'GIT_CONFIG_COUNT': '1', 'GIT_CONFIG_KEY_0': 'safe.directory', 'GIT_CONFIG_VALUE_0': '*'}


def allowed_app_env() -> dict[str, str]:
    """The part of the app's environment agents and terminals may see."""
    return {name: value for name, value in os.environ.items() if name in ALLOWED_NAMES or ALLOWED_PATTERN.match(name)}


def merged_env(user: User, account: Account, gateway: Mapping[str, str]) -> dict[str, str]:
    """What `user`'s agents and terminals start with when they run as `account`: the operator's `gateway` variables
    (`Settings.agent_env`) over identity over the allowed part of the app's environment."""
    env = {**login_env(account), **allowed_app_env()}  # the allowlist has no identity variables
    if not account.is_current:
        env.update(GIT_TRUSTS_CHECKOUTS)
    env.update(gateway)
    env.update(AGOR_USER=user.name, AGOR_USER_EMAIL=user.email)
    return env
