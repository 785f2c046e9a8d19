"""Real Chromium, a real app process, real git: long work shows its progress as it happens, on the control that started
it, and a failure says what to do next. git is held part-way by gates the test opens (the app's git reads a global
config with a pack-objects hook that stops sending after 512 KB, and a smudge filter that stops a checkout after 100
files), so the progress is seen mid-way without any sleep; the agent CLI checks wait on fake CLIs whose `--version`
answers once their gate opens."""
import base64
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from playwright.sync_api import expect

from agor import auth, boards, db

from . import app_server
from .app_server import running_app
from .conftest import PASSWORD

pytestmark = pytest.mark.browser
FILES = 400
HOLD_AFTER_FILES = 100

PACK_HOOK = '''#!{python}
import os, subprocess, sys, time
process = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE)  # `git pack-objects ...`, its stdin ours
out, sent = sys.stdout.buffer, 0
while chunk := process.stdout.read1(16384):
    while sent >= 512 * 1024 and not os.path.exists('{gates}/pack.open'):
        time.sleep(0.02)
    out.write(chunk)
    out.flush()
    sent += len(chunk)
sys.exit(process.wait())
'''
SMUDGE = '''#!/bin/sh
cat
state="{gates}/$(basename "$PWD")"
echo >> "$state.count"
if [ "$(wc -l < "$state.count")" -gt {hold} ]; then
  while [ ! -e "$state.open" ]; do sleep 0.02; done
fi
'''
FAKE_CLI = '''#!/bin/sh
while [ ! -e "{gate}" ]; do sleep 0.02; done
echo "9.9.9 (cli)"
'''


def script(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o755)
    return path


@pytest.fixture
def gated(tmp_path: Path):
    """A source repository of FILES random files (they go through the `gate` smudge filter), git's global config with
    the gates, and `open(name)` for a gate: `pack` (the clone's transfer) or a checkout's directory name."""
    gates = tmp_path / 'gates'
    gates.mkdir()
    hook = script(tmp_path / 'pack_hook.py', PACK_HOOK.format(python=sys.executable, gates=gates))
    smudge = script(tmp_path / 'smudge.sh', SMUDGE.format(gates=gates, hold=HOLD_AFTER_FILES))
    config = tmp_path / 'gitconfig'
    config.write_text(f'[uploadpack]\n\tpackObjectsHook = {hook}\n[filter "gate"]\n\tsmudge = {smudge}\n')
    source = tmp_path / 'src' / 'big'
    source.mkdir(parents=True)
    (source / '.gitattributes').write_text('*.txt filter=gate\n')
    for i in range(FILES):
        (source / f'f{i}.txt').write_bytes(base64.b64encode(os.urandom(6000)))
    for args in (['init', '-q', '-b', 'main'], ['add', '-A'],
                 ['-c', 'user.name=T', '-c', 'user.email=t@example.com', 'commit', '-qm', 'files']):
        subprocess.run(['git', *args], cwd=source, check=True, capture_output=True)
    return SimpleNamespace(source=source, config=config, gates=gates,
                           open=lambda name: (gates / f'{name}.open').touch())


def test_a_clone_and_a_new_worktree_show_git_progress_as_it_happens(browser, tmp_path, gated):
    with running_app(tmp_path / 'app', GIT_CONFIG_GLOBAL=str(gated.config), AGOR_REPO_ROOTS=str(tmp_path)) as server:
        db.init(server.database_url)
        owner = auth.create_first_owner('alice@example.com', 'Alice', PASSWORD)
        board = boards.create_board(owner, 'Sprint')
        page = app_server.open_page(browser, server, 'alice@example.com', PASSWORD, '/repos', selector='text=Clone')
        page.get_by_label('Local path on the server, or a path/URL to clone').fill(f'file://{gated.source}')
        page.get_by_text('Clone', exact=True).click()
        register = page.get_by_role('button', name='Register')
        register.click()

        step = page.get_by_role('status')
        expect(step).to_have_text(re.compile(r'Receiving objects: \d{1,2} %'), timeout=30000)  # held mid-way
        expect(register).to_have_attribute('aria-busy', 'true')
        expect(step.get_by_role('progressbar')).to_be_visible()
        gated.open('pack')
        expect(step).to_have_text(re.compile(r'Updating files: \d{1,2} %'), timeout=30000)  # the checkout, held
        gated.open('big')
        expect(page.get_by_text('Repository registered')).to_be_visible(timeout=30000)
        expect(step).to_be_hidden()
        expect(page.get_by_text('big', exact=True)).to_be_visible()

        page.get_by_label('Local path on the server, or a path/URL to clone').fill(f'file://{tmp_path}/src/none')
        register.click()
        expect(page.get_by_text(re.compile('The clone failed: .* Check the path or URL'))).to_be_visible()

        page.goto(f'{server.url}/b/{board.slug}')
        page.get_by_role('button', name='+ Worktree').click()
        dialog = page.get_by_role('dialog')
        dialog.get_by_label('Name (e.g. auth-fix)').fill('wt-progress')
        create = dialog.get_by_role('button', name='Create worktree')
        create.click()
        step = dialog.get_by_role('status')
        expect(step).to_have_text(re.compile(r'Updating files: \d{1,2} %'), timeout=30000)
        expect(create).to_have_attribute('aria-busy', 'true')
        gated.open('wt-progress')
        expect(page.locator('.agor-card', has_text='wt-progress')).to_be_visible(timeout=30000)
        expect(dialog).to_be_hidden()


def test_the_agent_cli_state_fills_in_as_its_check_answers(browser, tmp_path):
    """Settings → Claude Code is usable while its CLI is being checked; the admin page lists every CLI at once and
    fills in each as its `--version` answers."""
    gates = tmp_path / 'gates'
    gates.mkdir()
    clis = tmp_path / 'clis'
    (clis / 'node_modules' / '.bin').mkdir(parents=True)
    for binary in ('claude', 'codex'):
        script(clis / 'node_modules' / '.bin' / binary, FAKE_CLI.format(gate=gates / f'{binary}.open'))
    with running_app(tmp_path / 'app', AGOR_AGENT_CLI_DIR=str(clis)) as server:
        db.init(server.database_url)
        auth.create_first_owner('alice@example.com', 'Alice', PASSWORD)
        page = app_server.open_page(browser, server, 'alice@example.com', PASSWORD, '/?settings=claude-code',
                                    selector='.q-dialog')
        dialog = page.get_by_role('dialog', name='Settings')
        expect(dialog.get_by_text('Checking the Claude Code CLI…')).to_be_visible()
        expect(dialog.get_by_label('Default model')).to_be_editable()  # the page is there while the CLI answers
        (gates / 'claude.open').touch()
        expect(dialog.get_by_text('Installed: 9.9.9 (cli)')).to_be_visible(timeout=30000)
        expect(dialog.get_by_text('Checking the Claude Code CLI…')).to_have_count(0)

        page.goto(f'{server.url}/admin')
        node, codex = page.locator('[data-cli=node]'), page.locator('[data-cli=codex]')
        expect(node).not_to_contain_text('checking', timeout=30000)  # answered: its version (or how to install it)
        expect(codex).to_contain_text('checking…')  # still asking
        expect(codex.locator('.q-spinner')).to_be_visible()
        (gates / 'codex.open').touch()
        expect(codex).to_contain_text('9.9.9 (cli)', timeout=30000)
        expect(codex.locator('.q-spinner')).to_have_count(0)
