"""Comment text: Markdown rendered to sanitized HTML, and @mentions resolved to user ids.

markdown2 (escaping raw HTML) renders, then nh3 (ammonia) keeps only a small allow-list of tags and attributes,
`http`/`https`/`mailto` and relative links, and makes every link open in a new tab without an opener.
"""
from __future__ import annotations

import html
import re
from collections.abc import Iterable

import markdown2
import nh3

MAX_BYTES = 20 * 1024
TAGS = {'p', 'br', 'strong', 'em', 's', 'code', 'pre', 'blockquote', 'ul', 'ol', 'li', 'a', 'h1', 'h2', 'h3',
        'h4', 'h5', 'h6', 'hr', 'table', 'thead', 'tbody', 'tr', 'th', 'td', 'span'}
ATTRIBUTES = {'a': {'href', 'title'}, 'th': {'align'}, 'td': {'align'}}
EXTRAS = ['fenced-code-blocks', 'strike', 'tables', 'cuddled-lists', 'break-on-newline', 'code-friendly']


def render(body: str, mentioned_names: Iterable[str] = ()) -> str:
    """Sanitized HTML for a comment; `@Name` of each mentioned user is highlighted."""
    rendered = markdown2.markdown(body, safe_mode='escape', extras=EXTRAS)
    names = sorted({html.escape(n, quote=False) for n in mentioned_names if n}, key=len, reverse=True)
    if names:
        pattern = re.compile(r'(?<![\w@/])@(' + '|'.join(map(re.escape, names)) + r')(?!\w)', re.IGNORECASE)
        rendered = pattern.sub(r'<span class="agor-mention">@\1</span>', rendered)
    return nh3.clean(rendered, tags=TAGS, attributes=ATTRIBUTES, allowed_classes={'span': {'agor-mention'}},
                     url_schemes={'http', 'https', 'mailto'}, link_rel='noopener noreferrer nofollow',
                     set_tag_attribute_values={'a': {'target': '_blank'}}, strip_comments=True)


def find_mentions(body: str, users: Iterable[tuple[str, str]]) -> list[str]:
    """Ids of the users mentioned as `@Full Name` (case-insensitive, spaces and any script allowed), in order.

    `users` are (id, name) pairs. A longer name wins over a prefix of it (`@Ann Lee` is Ann Lee, not Ann), and an
    `@` inside a word (an email address) is not a mention.
    """
    by_name: dict[str, str] = {}
    for user_id, name in users:
        by_name.setdefault(name.casefold(), user_id)
    if not by_name:
        return []
    names = sorted(by_name, key=len, reverse=True)
    pattern = re.compile(r'(?<![\w@])@(' + '|'.join(map(re.escape, names)) + r')(?!\w)', re.IGNORECASE)
    found: list[str] = []
    for match in pattern.finditer(body):
        user_id = by_name[match.group(1).casefold()]
        if user_id not in found:
            found.append(user_id)
    return found


def clean_body(body: object) -> str:
    """The text to store, or ValueError with the reason it is refused."""
    if not isinstance(body, str) or not body.strip():
        raise ValueError('Write something first: an empty comment is not saved.')
    body = body.strip()
    if len(body.encode()) > MAX_BYTES:
        raise ValueError(f'A comment is limited to 20 KB; this one is {len(body.encode()) // 1024} KB.')
    return body


def preview(body: str, limit: int = 140) -> str:
    """One line of plain-ish text for inbox entries and tooltips."""
    text = ' '.join(re.sub(r'[`*_>#~\[\]]', '', body).split())
    return text if len(text) <= limit else text[:limit - 1] + '…'
