"""Zone trigger templates: Jinja2 in a sandbox, with `worktree.*`, `board.*`, `zone.*` and `user.*`.

The sandbox (jinja2.sandbox) refuses attribute escapes (`''.__class__`), there is no loader (no include, import or
extends, so no file access), and size guards refuse what would obviously allocate too much: `range` is capped, the
size a `*`, `**` or `%` would produce is computed from its operands before it runs (so `'x' * 100000 * 1000` is
refused at the second `*`), any call or filter with a huge integer argument is refused (`center(300000000)`),
and the output is limited to the size of a prompt. Everything else a template could do to exhaust the server (nested
loops, a clever allocation) is bounded by where it runs: `render` sends it to a worker process with CPU-time, memory
and wall-clock limits (agor.template_workers); `render_here` is the worker's side. Missing values render as empty
text; an unknown variable is an error that says what exists.
"""
from __future__ import annotations

import functools
import json
import os
import re
import resource
import sys
from collections.abc import Callable
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, meta
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from . import template_workers

MAX_TEMPLATE_CHARS = 20_000
MAX_OUTPUT_BYTES = 100 * 1024  # the same limit as a typed prompt
MAX_RANGE = 1000
MAX_INT_ARG = 10_000
MAX_INT_BITS = 4096
PRINTF_WIDTH = re.compile(r'%[-#0 +]*(\*|\d*)(?:\.(\*|\d*))?')
FORMAT_WIDTH = re.compile(r'\{[^{}]*:[^{}\d]*(\d+)(?:\.(\d+))?[^{}]*\}')
ROOTS = ('worktree', 'board', 'zone', 'user')
FIELDS = {
    'worktree': ('name', 'branch', 'path', 'repo', 'base', 'notes', 'issue_url', 'pr_url', 'created_by'),
    'board': ('name', 'description', 'slug', 'url'),
    'zone': ('label',),
    'user': ('name', 'email'),
}
SAMPLE = {
    'worktree': {'name': 'auth-fix', 'branch': 'auth-fix', 'path': '/srv/agor/worktrees/shop/auth-fix',
                 'repo': 'shop', 'base': 'main', 'notes': 'Login fails when the session cookie expires.',
                 'issue_url': 'https://example.com/shop/issues/42', 'pr_url': 'https://example.com/shop/pull/43',
                 'created_by': 'Alice'},
    'board': {'name': 'Sprint', 'description': 'This week’s work', 'slug': 'sprint', 'url': '/b/sprint'},
    'zone': {'label': 'Review'},
    'user': {'name': 'Alice', 'email': 'alice@example.com'},
}


class TemplateProblem(ValueError):
    """A template that cannot be saved or rendered; the message is safe to show its author."""


class Fields(dict):
    """One of the four variables; it knows its name so that an unknown field can be named in the error."""

    def __init__(self, root: str, values: dict[str, Any]) -> None:
        super().__init__({key: values.get(key) for key in FIELDS[root]})
        self._agor_root = root


class _Undefined(StrictUndefined):
    @property
    def _undefined_message(self) -> str:
        owner = self._undefined_obj
        if isinstance(owner, Fields):
            return (f'{owner._agor_root}.{self._undefined_name} does not exist; {owner._agor_root} has '
                    f'{", ".join(FIELDS[owner._agor_root])}.')
        return super()._undefined_message


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({'*', '**', '%'})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.filters = {name: _guarded(f) for name, f in self.filters.items()}

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == '*':
            _check_product(left, right)
        elif operator == '**':
            _check_power(left, right)
        elif isinstance(left, str):
            _check_format_string(left, PRINTF_WIDTH)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 (Jinja's signature)
        _check_numbers((*args, *kwargs.values()))
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """`'...'.format` is looked up through here (Jinja wraps it as it is accessed): check its widths first."""
        if getattr(value, '__name__', '') in {'format', 'format_map'} and isinstance(getattr(value, '__self__', None),
                                                                                    str):
            _check_format_string(value.__self__, FORMAT_WIDTH)
        return super().wrap_str_format(value)


def _guarded(function: Callable) -> Callable:
    """A filter whose arguments (after the value it applies to) go through the same size guards."""
    skip = 2 if hasattr(function, 'jinja_pass_arg') else 1  # the context/environment, then the value

    @functools.wraps(function)  # keeps `jinja_pass_arg`
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _check_numbers((*args[skip:], *kwargs.values()))
        if function.__name__ == 'do_format' and len(args) >= skip and isinstance(args[skip - 1], str):
            _check_format_string(args[skip - 1], PRINTF_WIDTH)
        return function(*args, **kwargs)
    return guarded


def _check_numbers(values: tuple) -> None:
    if any(isinstance(v, int) and abs(v) > MAX_INT_ARG for v in values):
        raise SecurityError(f'numbers above {MAX_INT_ARG} are not allowed as arguments')


def _check_product(left: Any, right: Any) -> None:
    """`*` repeats text or a list, or multiplies numbers: refuse it if the result would be too big."""
    for sequence, count in ((left, right), (right, left)):
        if isinstance(sequence, (str, list, tuple)) and isinstance(count, int) \
                and len(sequence) * count > MAX_OUTPUT_BYTES:
            raise SecurityError(f'repeating text or a list to over {MAX_OUTPUT_BYTES:,} items is not allowed')
    if isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > MAX_INT_BITS:
        raise SecurityError(f'numbers over {MAX_INT_BITS} bits are not allowed')


def _check_power(left: Any, right: Any) -> None:
    if isinstance(right, (int, float)) and abs(right) > 64:
        raise SecurityError('exponents above 64 are not allowed')
    if isinstance(left, int) and isinstance(right, int) and left.bit_length() * abs(right) > MAX_INT_BITS:
        raise SecurityError(f'numbers over {MAX_INT_BITS} bits are not allowed')


def _check_format_string(text: str, width: re.Pattern[str]) -> None:
    """`'%300000000s' % x`, `'{:>300000000}'.format(x)`: a width or precision is a size too."""
    for match in width.finditer(text):
        if any(group and (group == '*' or int(group) > MAX_INT_ARG) for group in match.groups()):
            raise SecurityError(f'widths above {MAX_INT_ARG} (or taken from an argument) are not allowed in formats')


def _range(*args: int) -> range:
    values = range(*args)
    if len(values) > MAX_RANGE:
        raise SecurityError(f'range() is limited to {MAX_RANGE} items')
    return values


_env = _Sandbox(undefined=_Undefined, autoescape=False, keep_trailing_newline=False,
                finalize=lambda value: '' if value is None else value)
_env.globals = {'range': _range}


def check(source: Any) -> str:
    """The template's text if it parses and uses only the four variables; otherwise TemplateProblem."""
    if not isinstance(source, str):
        raise TemplateProblem('A trigger template is text.')
    if len(source) > MAX_TEMPLATE_CHARS:
        raise TemplateProblem(f'A trigger template has at most {MAX_TEMPLATE_CHARS:,} characters.')
    try:
        tree = _env.parse(source)
    except TemplateSyntaxError as error:
        raise TemplateProblem(f'Syntax error on line {error.lineno}: {error.message}') from None
    unknown = sorted(meta.find_undeclared_variables(tree) - set(ROOTS) - set(_env.globals))
    if unknown:
        raise TemplateProblem(f'Unknown variable {unknown[0]!r}: use {", ".join(r + ".*" for r in ROOTS)}.')
    if next(meta.find_referenced_templates(tree), False) is not False:
        raise TemplateProblem('A trigger template cannot include, import or extend other templates.')
    return source


def render(source: str, values: dict[str, dict[str, Any]]) -> str:
    """Render against `values` ({'worktree': {...}, 'board': {...}, ...}) in a worker process with CPU, memory and
    wall-clock limits; TemplateProblem says what went wrong."""
    check(source)
    try:
        return template_workers.pool.render(source, values)
    except template_workers.RenderFailed as failure:
        raise TemplateProblem(str(failure)) from None


async def render_async(source: str, values: dict[str, dict[str, Any]]) -> str:
    """`render` for the event loop (the preview); cancelling the awaiting task stops the render."""
    check(source)
    try:
        return await template_workers.pool.render_async(source, values)
    except template_workers.RenderFailed as failure:
        raise TemplateProblem(str(failure)) from None


def render_here(source: str, values: dict[str, dict[str, Any]]) -> str:
    """Render in this process: only a template worker calls this (MemoryError is its to report)."""
    check(source)
    context = {root: Fields(root, values.get(root, {})) for root in ROOTS}
    try:
        text = _env.from_string(source).render(context)
    except UndefinedError as error:
        raise TemplateProblem(str(error.message)) from None
    except SecurityError as error:
        raise TemplateProblem(f'Not allowed in a trigger template: {error}') from None
    except MemoryError:
        raise
    except Exception as error:  # anything else a template can raise (1/0, a bad filter argument...)
        raise TemplateProblem(f'The template failed: {type(error).__name__}: {str(error)[:200]}') from None
    text = text.strip()
    if not text:
        raise TemplateProblem('The template renders to an empty prompt.')
    if len(text.encode()) > MAX_OUTPUT_BYTES:
        raise TemplateProblem('The rendered prompt is over 100 KB.')
    return text


WARM_UP = ("{{ 'a\\n%s' | format(worktree.name) | upper }}", '{{ 1 / 0 }}', '{{ missing.value }}', '{% if %}',
           '{{ worktree.__class__ }}', "{{ 'x' * 10 ** 9 }}")


def _load_what_renders_import() -> None:
    """Render once to each outcome (text, error, undefined, syntax, sandbox), so that the modules jinja2 imports on
    first use (codecs, its traceback rewriting) are loaded while the worker may still read them: as `nobody` it may
    not read the Python installation (e.g. one under /root)."""
    for source in WARM_UP:
        try:
            render_here(source, SAMPLE)
        except TemplateProblem:
            pass


def serve_jobs() -> None:
    """A template worker process (agor.template_workers starts it): read jobs from stdin, one JSON line each, and
    answer each with one line: {'text'} or {'error'}."""
    _load_what_renders_import()
    template_workers.drop_root()
    template_workers.limit_memory()
    out = sys.stdout.buffer
    out.write(b'"ready"\n')
    out.flush()
    # A CPU limit the app itself runs under (systemd's LimitCPU=, ulimit -t) stays: a worker that gave up root
    # cannot raise it, and failed every render when it tried.
    _, ceiling = resource.getrlimit(resource.RLIMIT_CPU)
    for line in sys.stdin.buffer:
        limit = int(sum(os.times()[:2])) + 1 + template_workers.CPU_SECONDS
        if ceiling != resource.RLIM_INFINITY:
            limit = min(limit, ceiling)
        resource.setrlimit(resource.RLIMIT_CPU, (limit, ceiling))
        job = json.loads(line)
        try:
            reply: dict[str, Any] = {'text': render_here(job['source'], job['values'])}
        except TemplateProblem as problem:
            reply = {'error': str(problem)}
        except MemoryError:
            megabytes = template_workers.MEMORY_BYTES // 2 ** 20
            reply = {'error': f'The template needs more than {megabytes} MB of memory to render.',
                     'retire': True}
        out.write(json.dumps(reply).encode() + b'\n')
        out.flush()
        if reply.get('retire'):
            return
