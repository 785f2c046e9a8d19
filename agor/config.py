"""Settings read from the environment (and CLI flags in main.py)."""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from .proxies import Network, parse_networks

UNIX_USER_MODES = ('simple', 'insulated', 'strict')


@dataclass(kw_only=True)
class Settings:
    data_dir: Path
    database_url: str
    host: str = '0.0.0.0'
    port: int = 8080
    demo: bool = False
    demo_reset_minutes: int = 0
    session_stuck_seconds: int = 600
    unix_user_mode: str = 'simple'
    unix_user_mode_auto: bool = False  # not configured: insulated as root, simple otherwise
    executor_account: str = 'agor-executor'  # insulated mode: the one account terminals run as
    unix_accounts: dict[str, str] = field(default_factory=dict)  # strict mode: app email -> Unix account
    tmux_dir: Path | None = None  # where the tmux sockets live (default: a private dir under /tmp)
    repo_roots: list[Path] = field(default_factory=list)
    allowed_origins: list[str] = field(default_factory=list)
    trusted_proxies: list[Network] = field(default_factory=list)  # whose X-Forwarded-* headers are believed
    owner_email: str | None = None
    owner_password: str | None = None
    owner_name: str | None = None

    @property
    def worktrees_dir(self) -> Path:
        return self.data_dir / 'worktrees'

    @property
    def repos_dir(self) -> Path:
        return self.data_dir / 'repos'

    def allowed_repo_roots(self) -> list[Path]:
        """Local repositories may only be registered from below these directories."""
        return [self.data_dir.resolve(), *(root.resolve() for root in self.repo_roots)]


def load_settings(*, data_dir: str | None = None, port: int | None = None, demo: bool | None = None) -> Settings:
    env = os.environ
    data = Path(data_dir or env.get('AGOR_DATA_DIR', 'data')).expanduser().resolve()
    data.mkdir(parents=True, exist_ok=True)
    mode = env.get('AGOR_UNIX_USER_MODE') or ('insulated' if os.geteuid() == 0 else 'simple')
    if mode not in UNIX_USER_MODES:
        raise SystemExit(f'AGOR_UNIX_USER_MODE must be one of {", ".join(UNIX_USER_MODES)}, not {mode!r}')
    roots = [Path(p).expanduser() for p in env.get('AGOR_REPO_ROOTS', str(Path.home())).split(os.pathsep) if p]
    return Settings(
        data_dir=data,
        database_url=env.get('DATABASE_URL') or f'sqlite:///{data / "agor.db"}',
        host=env.get('AGOR_HOST', '0.0.0.0'),
        port=port or int(env.get('AGOR_PORT', '8080')),
        demo=demo if demo is not None else env.get('AGOR_DEMO', '') in {'1', 'true', 'yes'},
        demo_reset_minutes=int(env.get('AGOR_DEMO_RESET_MINUTES', '0')),
        session_stuck_seconds=int(env.get('AGOR_SESSION_STUCK_SECONDS', '600')),
        unix_user_mode=mode,
        unix_user_mode_auto=not env.get('AGOR_UNIX_USER_MODE'),
        executor_account=env.get('AGOR_EXECUTOR_ACCOUNT', 'agor-executor'),
        unix_accounts=parse_unix_accounts(env.get('AGOR_UNIX_ACCOUNTS', '')),
        tmux_dir=Path(env['AGOR_TMUX_DIR']) if env.get('AGOR_TMUX_DIR') else None,
        repo_roots=roots,
        allowed_origins=[o.strip().rstrip('/') for o in env.get('AGOR_ALLOWED_ORIGINS', '').split(',') if o.strip()],
        trusted_proxies=parse_networks(env.get('AGOR_TRUSTED_PROXIES', '')),
        owner_email=env.get('AGOR_OWNER_EMAIL') or None,
        owner_password=env.get('AGOR_OWNER_PASSWORD') or None,
        owner_name=env.get('AGOR_OWNER_NAME') or None,
    )


def parse_unix_accounts(text: str) -> dict[str, str]:
    """`alice@example.com=alice,bob@example.com=bob` -> {email: Unix account}."""
    pairs = [item.split('=', 1) for item in text.split(',') if item.strip()]
    if any(len(pair) != 2 for pair in pairs):
        raise SystemExit('AGOR_UNIX_ACCOUNTS is a comma-separated list of email=unix-account pairs')
    return {email.strip().lower(): account.strip() for email, account in pairs}


def session_secret(data_dir: Path) -> str:
    """The secret that signs browser sessions: generated once, kept in the data dir (mode 0600)."""
    path = data_dir / 'session_secret'
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, 'w') as f:
            f.write(secrets.token_urlsafe(48))
    return path.read_text().strip()
