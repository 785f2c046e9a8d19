"""Zone trigger templates: Jinja2 in a sandbox, with `worktree.*`, `board.*`, `zone.*` and `user.*`.

The sandbox (jinja2.sandbox) refuses attribute escapes (`''.__class__`), there is no loader (no include, import or
extends, so no file access), and a few size guards keep a template from allocating its way out of the process:
`range` is capped, `*`/`**` and any call with a huge integer argument are refused, and the output is limited to the
size of a prompt. Missing values render as empty text; an unknown variable is an error that says what exists.
"""
from __future__ import annotations

from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, meta
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_TEMPLATE_CHARS = 20_000
MAX_OUTPUT_BYTES = 100 * 1024  # the same limit as a typed prompt
MAX_RANGE = 1000
MAX_INT_ARG = 10_000
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
    intercepted_binops = frozenset({'*', '**'})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        numbers = [v for v in (left, right) if isinstance(v, int)]
        if operator == '**' and (abs(right) > 64 if isinstance(right, (int, float)) else False):
            raise SecurityError('exponents above 64 are not allowed')
        if operator == '*' and any(isinstance(v, (str, list, tuple)) for v in (left, right)) \
                and any(n > MAX_OUTPUT_BYTES for n in numbers):
            raise SecurityError('repeating text that many times is not allowed')
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 (Jinja's signature)
        if any(isinstance(v, int) and abs(v) > MAX_INT_ARG for v in (*args, *kwargs.values())):
            raise SecurityError(f'numbers above {MAX_INT_ARG} are not allowed as arguments')
        return super().call(__context, __obj, *args, **kwargs)


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
    """Render against `values` ({'worktree': {...}, 'board': {...}, ...}); TemplateProblem says what went wrong."""
    check(source)
    context = {root: Fields(root, values.get(root, {})) for root in ROOTS}
    try:
        text = _env.from_string(source).render(context)
    except UndefinedError as error:
        raise TemplateProblem(str(error.message)) from None
    except SecurityError as error:
        raise TemplateProblem(f'Not allowed in a trigger template: {error}') from None
    except Exception as error:  # anything else a template can raise (1/0, a bad filter argument...)
        raise TemplateProblem(f'The template failed: {type(error).__name__}: {str(error)[:200]}') from None
    text = text.strip()
    if not text:
        raise TemplateProblem('The template renders to an empty prompt.')
    if len(text.encode()) > MAX_OUTPUT_BYTES:
        raise TemplateProblem('The rendered prompt is over 100 KB.')
    return text


def preview(source: str, values: dict[str, dict[str, Any]] | None = None) -> tuple[str | None, str | None]:
    """(rendered text, None) or (None, error) for the zone editor; against the sample worktree by default."""
    try:
        return render(source, values or SAMPLE), None
    except TemplateProblem as problem:
        return None, str(problem)
