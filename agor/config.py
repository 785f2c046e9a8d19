"""The app's settings: one typed object, read once from the environment (and main.py's flags) and passed explicitly.

Every variable of the README's configuration table is a field here (`env_names()` maps them); a bad value stops the
start with one line per variable saying what is expected (`SettingsError`).
"""
from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from .auth import MIN_PASSWORD
from .proxies import Network, parse_networks

ENV_PREFIX = 'AGOR_'
AGENT_ENV_PREFIX = 'AGOR_AGENT_ENV_'
ENV_NAME = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*$')
SECRET_FIELDS = {'database_url', 'redis_url', 'owner_password', 'master_secret'}  # named, never echoed
UnixUserMode = Literal['simple', 'insulated', 'strict']


def default_cli_dir() -> Path:
    """The npm prefix scripts/_setup.sh installs the pinned CLIs (and the Node they run on) into. As root it is
    outside any home directory, so that the executor account agents run as can read it."""
    return Path('/opt/agor/agent-clis') if os.geteuid() == 0 else Path.home() / '.cache' / 'agor' / 'agent-clis'


def _default_mode() -> UnixUserMode:
    return 'insulated' if os.geteuid() == 0 else 'simple'


def _split(separator: str) -> Any:
    def split(value: Any) -> Any:
        return [item.strip() for item in value.split(separator) if item.strip()] if isinstance(value, str) else value
    return split


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_ignore_empty=True, extra='forbid',
                                      populate_by_name=True, validate_default=True)

    data_dir: Path = Path('data')
    database_url: str = Field('', validation_alias='DATABASE_URL')  # default: SQLite in the data dir
    redis_url: str = Field('', validation_alias='REDIS_URL')  # set: several processes share events and presence
    runner: bool = True  # this process runs agent sessions and the watchdog (one process of a cluster)
    host: str = '0.0.0.0'
    port: int = Field(8080, ge=1, le=65535)
    demo: bool = False
    demo_reset_minutes: int = Field(0, ge=0)
    session_stuck_seconds: int = Field(600, ge=1)
    unix_user_mode: UnixUserMode = Field(default_factory=_default_mode)
    executor_account: str = 'agor-executor'  # insulated mode: the one account terminals and agents run as
    unix_accounts: Annotated[dict[str, str], NoDecode] = {}  # strict mode: app email -> Unix account
    tmux_dir: Path | None = None  # where the tmux sockets live (default: a private dir under /tmp)
    repo_roots: Annotated[list[Path], NoDecode] = Field(default_factory=lambda: [Path.home()])
    allowed_origins: Annotated[list[str], NoDecode] = []
    trusted_proxies: Annotated[list[Network], NoDecode] = []  # whose X-Forwarded-* headers are believed
    owner_email: str | None = None
    owner_password: str | None = Field(None, min_length=MIN_PASSWORD)
    owner_name: str | None = None
    agent_env: dict[str, str] = Field({}, validation_alias='AGOR_AGENT_ENV_<NAME>')  # the operator's, for every agent
    agent_cli_dir: Path = Field(default_factory=default_cli_dir)
    agent_max_retries: int = Field(2, ge=0, le=20)
    master_secret: SecretStr | None = None  # users' secrets are sealed under it; else data/master_secret
    api_requests_per_minute: int = Field(600, ge=1)  # per API key (or browser login) on /api/v1
    mcp_url: str = ''  # where agents reach the app's MCP server (default http://127.0.0.1:<port>/mcp)
    approval_timeout_seconds: int = Field(60, ge=1, le=3600)  # an agent's unanswered approval request is denied
    mcp_allow_loopback: bool = False  # MCP servers and OAuth discovery may use http(s) on loopback (development)

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource, **_: Any) -> tuple:
        return init_settings, _AgentEnvSource(settings_cls), env_settings

    @field_validator('data_dir', 'agent_cli_dir', 'tmux_dir')
    @classmethod
    def _absolute(cls, path: Path | None) -> Path | None:
        return path.expanduser().resolve() if path is not None else None

    _repo_roots = field_validator('repo_roots', mode='before')(_split(os.pathsep))
    _origins = field_validator('allowed_origins', mode='before')(_split(','))

    @field_validator('allowed_origins')
    @classmethod
    def _no_trailing_slash(cls, origins: list[str]) -> list[str]:
        return [origin.rstrip('/') for origin in origins]

    @field_validator('repo_roots')
    @classmethod
    def _expand(cls, roots: list[Path]) -> list[Path]:
        return [root.expanduser() for root in roots]

    @field_validator('trusted_proxies', mode='before')
    @classmethod
    def _networks(cls, value: Any) -> Any:
        return parse_networks(value) if isinstance(value, str) else value

    @field_validator('unix_accounts', mode='before')
    @classmethod
    def _accounts(cls, value: Any) -> Any:
        """`alice@example.com=alice,bob@example.com=bob` -> {email: Unix account}."""
        if not isinstance(value, str):
            return value
        pairs = [item.split('=', 1) for item in value.split(',') if item.strip()]
        if any(len(pair) != 2 or not pair[0].strip() or not pair[1].strip() for pair in pairs):
            raise ValueError('a comma-separated list of email=unix-account pairs')
        return {email.strip().lower(): account.strip() for email, account in pairs}

    @field_validator('database_url')
    @classmethod
    def _database_url(cls, url: str) -> str:
        try:
            url and make_url(url)
        except ArgumentError:
            raise ValueError('a database URL such as postgresql://agor@db/agor or sqlite:///path/agor.db') from None
        return url

    @field_validator('master_secret')
    @classmethod
    def _long_enough(cls, secret: SecretStr | None) -> SecretStr | None:
        if secret is not None and len(secret.get_secret_value().strip()) < 32:
            raise ValueError('at least 32 characters, e.g. the output of `openssl rand -base64 48`')
        return secret

    @field_validator('mcp_url')
    @classmethod
    def _mcp_url(cls, url: str) -> str:
        if url and not re.match(r'^https?://[^/\s]+/\S*$', url):
            raise ValueError("the app's /mcp endpoint as agents reach it, e.g. http://127.0.0.1:8080/mcp")
        return url

    @field_validator('redis_url')
    @classmethod
    def _redis_url(cls, url: str) -> str:
        if url and not url.startswith(('redis://', 'rediss://', 'unix://')):
            raise ValueError('a Redis URL such as redis://127.0.0.1:6379/0')
        return url

    @field_validator('agent_env')
    @classmethod
    def _env_names(cls, env: dict[str, str]) -> dict[str, str]:
        bad = [name for name in env if not ENV_NAME.match(name)]
        if bad:
            raise ValueError(f'<NAME> is a variable name (letters, digits, _), not {", ".join(map(repr, bad))}')
        return env

    @model_validator(mode='after')
    def _derived(self) -> Settings:
        if not self.database_url:
            self.database_url = f'sqlite:///{self.data_dir / "agor.db"}'
        if not self.mcp_url:  # agents run on this machine: loopback, unless the app listens on one address only
            host = '127.0.0.1' if self.host in ('0.0.0.0', '::', '', 'localhost') else self.host
            self.mcp_url = f'http://{f"[{host}]" if ":" in host else host}:{self.port}/mcp'
        return self

    @property
    def unix_user_mode_auto(self) -> bool:
        """Not configured: insulated as root, simple otherwise."""
        return 'unix_user_mode' not in self.model_fields_set

    @property
    def worktrees_dir(self) -> Path:
        return self.data_dir / 'worktrees'

    @property
    def repos_dir(self) -> Path:
        return self.data_dir / 'repos'

    def allowed_repo_roots(self) -> list[Path]:
        """Local repositories may only be registered from below these directories."""
        return [self.data_dir, *(root.resolve() for root in self.repo_roots)]


class _AgentEnvSource(PydanticBaseSettingsSource):
    """`AGOR_AGENT_ENV_<NAME>=value` -> agent_env[<NAME>]: a family of variables rather than one."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        found = {name.removeprefix(AGENT_ENV_PREFIX): value for name, value in os.environ.items()
                 if name.startswith(AGENT_ENV_PREFIX) and len(name) > len(AGENT_ENV_PREFIX)}
        return {'agent_env': found} if found else {}


class SettingsError(Exception):
    """A bad setting: one line per variable, naming it and what is expected."""


def env_names() -> dict[str, str]:
    """Field name -> the environment variable it is read from."""
    return {name: field.validation_alias if isinstance(field.validation_alias, str) else ENV_PREFIX + name.upper()
            for name, field in Settings.model_fields.items()}


FLAGS = {'data_dir': '--data-dir', 'port': '--port', 'demo': '--demo'}  # main.py's, over the environment


def load_settings(*, data_dir: str | None = None, port: int | None = None, demo: bool | None = None) -> Settings:
    """The settings from the environment, with main.py's flags (when given) over it; the data dir exists after."""
    given = {'data_dir': data_dir, 'port': port, 'demo': demo}
    flags = {name: value for name, value in given.items() if value is not None}
    try:
        settings = Settings(**flags)
    except ValidationError as error:
        raise SettingsError('\n'.join(_problem(problem, flags) for problem in error.errors())) from None
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return settings


def _problem(problem: Any, flags: dict[str, Any]) -> str:
    field = str(problem['loc'][0]) if problem['loc'] else ''
    field = next((name for name, env in env_names().items() if env == field), field)
    where = FLAGS[field] if field in flags else env_names().get(field, field)
    message = problem['msg'].removeprefix('Value error, ')
    if field in SECRET_FIELDS or problem['type'] == 'extra_forbidden':
        return f'{where}: {message}'
    return f'{where}={problem["input"]!r}: {message}' if isinstance(problem['input'], str | int) else \
        f'{where}: {message}'


def session_secret(data_dir: Path) -> str:
    """The secret that signs browser sessions: generated once, kept in the data dir (mode 0600)."""
    return _secret_file(data_dir / 'session_secret')


def api_key_pepper(data_dir: Path) -> bytes:
    """The server pepper personal API keys are hashed with (HMAC-SHA256, agor.api_keys): generated once, kept in the
    data dir (mode 0600), never in the database, so a copy of the database alone cannot check a guessed key."""
    return _secret_file(data_dir / 'api_key_pepper').encode()


def _secret_file(path: Path) -> str:
    if not path.exists():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it just now
            pass
        else:
            with os.fdopen(fd, 'w') as f:
                f.write(secrets.token_urlsafe(48))
    return path.read_text().strip()
