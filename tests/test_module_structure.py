"""The shape of the domain package: every module of agor/ imports on its own, without NiceGUI, and no two modules
import each other, directly or round a loop, not even through an import deferred into a function."""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / 'agor'


def module_names() -> dict[str, Path]:
    """Every module of agor/ by its dotted name (a package by its own name)."""
    names = {}
    for path in sorted(PACKAGE.rglob('*.py')):
        parts = path.relative_to(ROOT).with_suffix('').parts
        names['.'.join(parts[:-1] if parts[-1] == '__init__' else parts)] = path
    return names


def imports_of(name: str, path: Path, modules: set[str]) -> set[str]:
    """The agor modules `name` imports anywhere in its source: at the top, in a function, under a condition."""
    package = name if path.name == '__init__.py' else name.rpartition('.')[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                anchor = package.rsplit('.', node.level - 1)[0] if node.level > 1 else package
                base = f'{anchor}.{base}' if base else anchor
            for alias in node.names:  # `from pkg import module` needs the module; `from module import name` it
                found.add(f'{base}.{alias.name}' if f'{base}.{alias.name}' in modules else base)
    return {m for m in found if m in modules and m != name}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import loop (as the list of modules round it), or None."""
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        if node in path:
            return path[path.index(node):] + [node]
        if node in done:
            return None
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if loop := visit(nxt):
                return loop
        path.pop()
        done.add(node)
        return None
    return next((loop for node in sorted(graph) if (loop := visit(node))), None)


def import_graph() -> dict[str, set[str]]:
    modules = module_names()
    return {name: imports_of(name, path, set(modules)) for name, path in modules.items()}


def test_no_module_of_agor_imports_itself_round_a_loop() -> None:
    graph = import_graph()
    assert graph['agor.boards'] >= {'agor.canvas', 'agor.comments'}  # the walk sees what is there
    assert find_cycle(graph) is None, ' -> '.join(find_cycle(graph) or [])


def test_a_deferred_import_that_closes_a_loop_is_found(tmp_path: Path) -> None:
    """The detector itself: a loop closed by an import inside a function counts."""
    graph = import_graph()
    graph['agor.canvas'] = {*graph['agor.canvas'], 'agor.comments'}  # as `from .comments import x` in a function
    assert find_cycle(graph) == ['agor.canvas', 'agor.comments', 'agor.canvas']
    source = tmp_path / 'm.py'
    source.write_text('def later():\n    from .comments import detach_targets\n')
    assert imports_of('agor.canvas', source, set(graph)) == {'agor.comments'}


ALONE = [name for name in module_names() if not name.startswith('agor.migrations')]  # alembic runs those
FORK_EACH = """
import importlib, json, os, sys
for library in sys.argv[2:]:  # what agor imports from outside: loaded once, so each fork costs only agor itself
    importlib.import_module(library)
for name in sys.argv[1].split(','):
    read, write = os.pipe()
    if os.fork() == 0:
        os.close(read)
        try:
            importlib.import_module(name)
            problem = 'imports NiceGUI' if 'nicegui' in sys.modules else ''
        except BaseException as error:
            problem = f'{type(error).__name__}: {error}'
        os.write(write, problem.encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as answer:
        print(json.dumps([name, answer.read()]), flush=True)
    os.wait()
"""


def libraries() -> list[str]:
    """The top-level packages agor imports from outside itself (never NiceGUI: that is what is checked)."""
    found = set()
    for path in module_names().values():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name.split('.')[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                found.add(node.module.split('.')[0])
    return sorted(found - {'agor', 'nicegui', '__future__'})


@pytest.fixture(scope='module')
def imported_alone() -> dict[str, str]:
    """Each module imported first and alone (a fork of an interpreter that has loaded no agor module yet): what went
    wrong, per module ('' for nothing)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith('PYTEST_')}
    done = subprocess.run([sys.executable, '-c', FORK_EACH, ','.join(ALONE), *libraries()], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(line) for line in done.stdout.splitlines())


@pytest.mark.parametrize('name', ALONE)
def test_each_module_imports_alone_without_nicegui(imported_alone: dict[str, str], name: str) -> None:
    assert imported_alone[name] == ''
