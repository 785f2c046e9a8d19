"""`agor`: the board from a shell, over the HTTP API (docs/api.md) with a personal API key.

`agor login URL` asks for a key, checks it and keeps URL and key in ~/.config/agor/config.json (0600); AGOR_URL and
AGOR_API_KEY override the file. Tables by default, `--json` for scripts; an error is one line on stderr and exit
status 1. Imports neither NiceGUI nor the database: it is only an HTTP client (Click + httpx).
"""
from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import httpx

TIMEOUT = httpx.Timeout(30.0)
ENDED = {'failed': 'failed', 'stopped': 'was stopped'}  # final statuses that make the exit status 1


class Failure(click.ClickException):
    """One line on stderr (`agor: …`), exit status 1."""

    def show(self, file: Any = None) -> None:
        click.echo(f'agor: {self.message}', err=True)


# ---- configuration ---------------------------------------------------------------------------------------------------

def config_path() -> Path:
    base = os.environ.get('XDG_CONFIG_HOME') or str(Path.home() / '.config')
    return Path(base) / 'agor' / 'config.json'


def read_config() -> dict[str, str]:
    path = config_path()
    try:
        stored = json.loads(path.read_text()) if path.exists() else {}
    except (OSError, ValueError):
        raise Failure(f'{path} is not readable JSON: run `agor login URL` again.') from None
    url = os.environ.get('AGOR_URL') or stored.get('url')
    key = os.environ.get('AGOR_API_KEY') or stored.get('key')
    if not url or not key:
        raise Failure('not logged in: run `agor login URL` (or set AGOR_URL and AGOR_API_KEY).')
    return {'url': url, 'key': key}


def write_config(url: str, key: str) -> Path:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # also when the file was there before with other permissions
    with os.fdopen(fd, 'w') as f:
        json.dump({'url': url, 'key': key}, f)
    return path


# ---- the API ---------------------------------------------------------------------------------------------------------

class Api:
    def __init__(self, url: str, key: str) -> None:
        self.url = url.rstrip('/')
        self.http = httpx.Client(base_url=self.url + '/api/v1', timeout=TIMEOUT,
                                 headers={'Authorization': f'Bearer {key}', 'User-Agent': 'agor-cli'})

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise Failure(f'cannot reach {self.url}: {error}') from None
        self.http.cookies.clear()  # the key is the credential: no browser session is started or kept
        if response.status_code >= 400:
            raise Failure(_reason(response))
        return response.json() if response.content else None

    def items(self, path: str, **params: Any) -> list[Any]:
        """Every item of a paged list."""
        found: list[Any] = []
        cursor = None
        while True:
            page = self.call('GET', path, params={**params, **({'cursor': cursor} if cursor else {})})
            found += page['items']
            cursor = page['next_cursor']
            if not cursor:
                return found

    def events(self, session_id: str, cursor: str | None) -> Iterator[tuple[str, Any]]:
        """The session's server-sent events as (event, data)."""
        params = {'cursor': cursor} if cursor else {}
        try:
            with self.http.stream('GET', f'/sessions/{session_id}/stream', params=params,
                                  timeout=httpx.Timeout(30.0, read=None)) as response:
                if response.status_code >= 400:
                    response.read()
                    raise Failure(_reason(response))
                event, data = 'message', []
                for line in response.iter_lines():
                    if not line:
                        if data:
                            yield event, json.loads('\n'.join(data))
                        event, data = 'message', []
                    elif line.startswith('event:'):
                        event = line[6:].strip()
                    elif line.startswith('data:'):
                        data.append(line[5:].strip())
        except httpx.HTTPError as error:
            raise Failure(f'the stream from {self.url} broke off: {error}') from None


def _reason(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f'{response.status_code} {response.reason_phrase} from the server'
    message = body.get('message') if isinstance(body, dict) else None
    return message or f'{response.status_code} {response.reason_phrase} from the server'


# ---- output ----------------------------------------------------------------------------------------------------------

def table(rows: list[dict[str, Any]], columns: list[tuple[str, str]], empty: str) -> None:
    if not rows:
        click.echo(empty)
        return
    cells = [[_cell(row.get(key)) for key, _ in columns] for row in rows]
    widths = [max(len(title), *(len(line[i]) for line in cells)) for i, (_, title) in enumerate(columns)]
    click.echo('  '.join(title.ljust(w) for (_, title), w in zip(columns, widths)).rstrip())
    for line in cells:
        click.echo('  '.join(value.ljust(w) for value, w in zip(line, widths)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return '-'
    if isinstance(value, bool):
        return 'yes' if value else 'no'
    return ' '.join(str(value).split())[:60]


def emit(data: Any, as_json: bool, human: Callable[[], None]) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        human()


json_option = click.option('--json', 'as_json', is_flag=True, help='Print JSON (for scripts) instead of a table.')


def pass_api(command: Callable) -> Callable:
    """The command gets the API of the app logged in to (read when it runs, so `--help` needs no login)."""
    @functools.wraps(command)
    def with_api(*args: Any, **kwargs: Any) -> Any:
        config = read_config()
        return command(Api(config['url'], config['key']), *args, **kwargs)
    return with_api


# ---- commands --------------------------------------------------------------------------------------------------------

@click.group(context_settings={'help_option_names': ['-h', '--help']})
def cli() -> None:
    """Agor from the shell: boards, worktrees, sessions, comments and your inbox, as yourself."""


@cli.command()
@click.argument('url')
@json_option
def login(url: str, as_json: bool) -> None:
    """Check a personal API key against the app at URL and keep both for the next commands.

    The key is asked for (hidden), or read from standard input when that is not a terminal."""
    url = url.strip().rstrip('/')
    if not url.startswith(('http://', 'https://')):
        raise Failure(f'{url!r} is not an http:// or https:// address of an Agor app.')
    if sys.stdin.isatty():
        key = click.prompt('Personal API key (Settings → Personal API Keys)', hide_input=True)
    else:
        key = sys.stdin.readline()
    key = key.strip()
    if not key:
        raise Failure('no key given.')
    me = Api(url, key).call('GET', '/me')
    path = write_config(url, key)
    emit(me, as_json, lambda: click.echo(f'Logged in to {url} as {me["name"]} <{me["email"]}> ({me["role"]}); '
                                         f'the key is kept in {path}.'))


@cli.command()
@json_option
@pass_api
def boards(api: Api, as_json: bool) -> None:
    """The boards you can see."""
    found = api.items('/boards')
    emit(found, as_json, lambda: table(found, [('slug', 'BOARD'), ('name', 'NAME'), ('cards', 'CARDS'),
                                               ('private', 'PRIVATE')], 'No boards.'))


@cli.command()
@click.option('--board', help='Only the worktrees on this board (slug or id).')
@json_option
@pass_api
def worktrees(api: Api, board: str | None, as_json: bool) -> None:
    """The worktrees that exist for you."""
    found = api.items('/worktrees', **({'board': board} if board else {}))
    emit(found, as_json, lambda: table(found, [('id', 'ID'), ('repo', 'REPO'), ('name', 'NAME'), ('branch', 'BRANCH'),
                                               ('level', 'YOU MAY')], 'No worktrees.'))


@cli.group()
def worktree() -> None:
    """Create worktrees."""


@worktree.command('create')
@click.argument('name')
@click.option('--repo', required=True, help='The repository (id, slug or name).')
@click.option('--branch', help='The branch (default: the name).')
@click.option('--existing-branch', is_flag=True, help='Check out an existing branch instead of making one.')
@click.option('--base', help="What a new branch starts from (default: the repository's default branch).")
@click.option('--board', help='Put its card on this board (slug or id).')
@json_option
@pass_api
def worktree_create(api: Api, name: str, repo: str, branch: str | None, existing_branch: bool, base: str | None,
                    board: str | None, as_json: bool) -> None:
    """Create worktree NAME (`git worktree add`) in a repository."""
    made = api.call('POST', '/worktrees', json={'repo': repo, 'name': name, 'branch': branch, 'base': base,
                                                'new_branch': not existing_branch, 'board': board})
    emit(made, as_json, lambda: click.echo(f'Created worktree {made["name"]} ({made["id"]}) on branch '
                                           f'{made["branch"]} at {made["path"]}.'))


@cli.group()
def session() -> None:
    """Start, prompt and stop agent sessions."""


@session.command('start')
@click.argument('prompt')
@click.option('--worktree', required=True, help='The worktree (id, id prefix or name).')
@click.option('--agent', required=True, help='The agent: claude-code, codex, gemini, opencode or shell.')
@click.option('--model', help='The model (default: your settings for that agent).')
@click.option('--follow', is_flag=True, help='Stream the transcript until the turn ends; exit 1 if it failed.')
@json_option
@pass_api
def session_start(api: Api, prompt: str, worktree: str, agent: str, model: str | None, follow: bool,
                  as_json: bool) -> None:
    """Start a session in a worktree with PROMPT as its first turn."""
    started = api.call('POST', '/sessions', json={'worktree': worktree, 'agent': agent, 'prompt': prompt,
                                                  'model': model})
    if follow:
        _follow(api, started['id'], None, as_json)
    else:
        emit(started, as_json, lambda: click.echo(f'Started session {started["id"]}: {started["title"]}'))


@session.command('prompt')
@click.argument('session_id')
@click.argument('prompt')
@click.option('--follow', is_flag=True, help='Stream the transcript until the turn ends; exit 1 if it failed.')
@json_option
@pass_api
def session_prompt(api: Api, session_id: str, prompt: str, follow: bool, as_json: bool) -> None:
    """Queue PROMPT for session SESSION_ID (it runs when the current run ends)."""
    cursor = _last_entry(api, session_id) if follow else None
    queued = api.call('POST', f'/sessions/{session_id}/prompts', json={'prompt': prompt})
    if follow:
        _follow(api, session_id, cursor, as_json)
    else:
        emit(queued, as_json, lambda: click.echo(f'Queued ({queued["session"]["queued"]} waiting).'))


@session.command('stop')
@click.argument('session_id')
@json_option
@pass_api
def session_stop(api: Api, session_id: str, as_json: bool) -> None:
    """Stop session SESSION_ID's run and drop its waiting prompts."""
    answer = api.call('POST', f'/sessions/{session_id}/stop')
    emit(answer, as_json, lambda: click.echo('Stopped.' if answer['stopped'] else 'Nothing was running.'))


@cli.group()
def comment() -> None:
    """Comment on worktrees."""


@comment.command('add')
@click.argument('text')
@click.option('--worktree', required=True, help='The worktree (id, id prefix or name); its card must be on a board.')
@json_option
@pass_api
def comment_add(api: Api, text: str, worktree: str, as_json: bool) -> None:
    """Start a thread with TEXT on a worktree's card (@Name mentions notify)."""
    found = api.call('GET', f'/worktrees/{worktree}')
    if not found['board_id']:
        raise Failure(f'worktree {found["name"]} is on no board: put its card on one to comment on it.')
    thread = api.call('POST', f'/boards/{found["board_id"]}/comments',
                      json={'body': text, 'target_type': 'worktree', 'target_id': found['id']})
    emit(thread, as_json, lambda: click.echo(f'Commented on {found["name"]} (thread {thread["id"]}).'))


@cli.command()
@click.option('--unread', is_flag=True, help='Only unread entries.')
@json_option
@pass_api
def inbox(api: Api, unread: bool, as_json: bool) -> None:
    """Your inbox: mentions, replies and comments on your worktrees, newest first."""
    found = api.items('/notifications', **({'unread': 'true'} if unread else {}))
    emit(found, as_json, lambda: table(
        [{**n, 'new': not n['read']} for n in found],
        [('new', 'NEW'), ('created_at', 'WHEN'), ('title', 'WHAT'), ('preview', 'PREVIEW')], 'Inbox is empty.'))


# ---- following a session ---------------------------------------------------------------------------------------------

def _last_entry(api: Api, session_id: str) -> str | None:
    cursor = None
    while True:
        page = api.call('GET', f'/sessions/{session_id}/transcript', params={'limit': 1000,
                                                                              **({'cursor': cursor} if cursor else {})})
        if not page['items']:
            return cursor
        cursor = page['next_cursor']


def _follow(api: Api, session_id: str, cursor: str | None, as_json: bool) -> None:
    """Print the transcript as it is written until the turn ends; Failure when it failed or was stopped."""
    final: dict[str, Any] | None = None
    for event, data in api.events(session_id, cursor):
        if as_json:
            click.echo(json.dumps({'event': event, 'data': data}, ensure_ascii=False))
        else:
            _show(event, data)
        if event == 'error':
            raise Failure(data.get('message', 'the stream ended'))
        if event == 'session' and data['status'] != 'running' and not data['queued']:
            final = data
            break
    if final is None:
        raise Failure('the stream ended before the turn did.')
    if not as_json:
        click.echo()
    if final['status'] in ENDED:
        raise Failure(f'the session {ENDED[final["status"]]}' + (f': {final["error"]}' if final['error'] else '.'))


def _show(event: str, data: Any) -> None:
    if event == 'entry':
        text = data['text']
        if data['kind'] == 'user':
            click.echo(f'\n> {text}')
        elif data['kind'] == 'assistant':
            click.echo(text, nl=False)
        elif data['kind'] == 'error':
            click.echo(f'\n[error] {text}', err=True)
        elif text:
            click.echo(f'\n[{data["kind"]}] {text}')
    elif event == 'append':
        click.echo(data['text'], nl=False)


def main() -> None:
    try:
        cli.main(prog_name='agor')
    except Exception as error:  # noqa: BLE001 (a bug of ours or an answer we did not expect): one line, no traceback
        click.echo(f'agor: unexpected {type(error).__name__}: {error}', err=True)
        sys.exit(1)


if __name__ == '__main__':
    main()
