"""Who is on this board: you first, then the others, at most five faces and "+N"; click a face to follow them."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nicegui import ui

from .avatar import avatar

MAX_FACES = 5


class Facepile(ui.row):
    def __init__(self, me_conn: str, me_user: str, on_follow: Callable[[str | None], Any]) -> None:
        super().__init__()
        self.classes('items-center gap-1 no-wrap').mark('facepile')
        self.me_conn = me_conn
        self.me_user = me_user
        self.on_follow = on_follow
        self.following: str | None = None
        self._shown: tuple = ()
        self._tips: dict[str, ui.tooltip] = {}
        self._people: list[dict[str, Any]] = []
        self._more: ui.button  # "+N", made with the faces

    def show(self, snapshot: tuple[dict[str, Any], ...]) -> None:
        people = _one_per_user(snapshot, self.me_user)
        mine = next((p for p in snapshot if p['conn'] == self.me_conn), None)
        following = self.following = mine['following'] if mine else None
        followers = [p['name'] for p in people if p['following'] == self.me_user]
        shown = (tuple((p['user'], p['name'], p['initials'], p['color'], p['avatar'], p['state'])
                       for p in people[:MAX_FACES]),
                 following,
                 tuple(followers))
        self._people = people
        if shown == self._shown:  # the same faces: retitle and recount, keep them (a click may be landing), so a
            for person in people[:MAX_FACES]:  # crowd joining costs every page a text, not a facepile
                if person['user'] in self._tips:
                    self._tips[person['user']].set_text(self._tip(person))
            self._recount()
            return
        self._shown = shown
        self._tips = {}
        self.clear()
        with self:
            with ui.row().classes('items-center gap-0 no-wrap pl-2'):
                for person in people[:MAX_FACES]:
                    self._face(person)
                self._more = ui.button().props('flat dense round size=sm').mark('face-more')  # shown past 5 faces
                with self._more:
                    menu = ui.menu()  # filled when opened: a board with many people costs every viewer little
                    menu.on('before-show', lambda: self._fill(menu))
                self._recount()
            if following:
                name = next((p['name'] for p in people if p['user'] == following), 'someone')
                ui.chip(f'Following {name} · Esc to stop', on_click=lambda: self.on_follow(None)) \
                    .props('dense color=teal-8 text-color=white clickable').mark('following')
            if followers:
                with ui.row().classes('items-center gap-1 no-wrap text-xs text-teal-800').mark('followers'):
                    ui.icon('visibility', size='16px').props('aria-hidden=true')
                    ui.label(f'{", ".join(followers)} following you')

    def _recount(self) -> None:
        extra = len(self._people) - MAX_FACES
        self._more.set_text(f'+{extra}')
        self._more.set_visibility(extra > 0)

    def _fill(self, menu: ui.menu) -> None:
        menu.clear()
        with menu:
            for person in self._people:
                ui.menu_item(f'{person["name"]} · {person["state"]}', lambda p=person: self._toggle(p)) \
                    .props('dense').mark(f'face-menu-{person["user"]}')

    def _tip(self, person: dict[str, Any]) -> str:
        you = ' (you)' if person['user'] == self.me_user else ''
        where = f' · {person["label"]}' if person['label'] else ''
        return f'{person["name"]}{you} · {person["state"]}{where}'

    def _face(self, person: dict[str, Any]) -> None:
        with ui.element('div').classes('agor-face').props(f'data-face={person["user"]} data-state={person["state"]}') \
                .on('click', lambda p=person: self._toggle(p)).mark(f'face-{person["user"]}'):
            avatar(person['name'], person['initials'], person['color'], person['avatar'], size='30px', tooltip=False)
            ui.element('span').classes(f'agor-face-dot agor-face-{person["state"]}')
            self._tips[person['user']] = ui.tooltip(self._tip(person))

    def _toggle(self, person: dict[str, Any]) -> None:
        if person['user'] != self.me_user:
            self.on_follow(None if person['user'] == self.following else person['user'])


def _one_per_user(snapshot: tuple[dict[str, Any], ...], me_user: str) -> list[dict[str, Any]]:
    """A person with several tabs is one face, in their most present state; you come first."""
    rank = {'active': 0, 'idle': 1, 'away': 2}
    best: dict[str, dict[str, Any]] = {}
    for person in snapshot:
        current = best.get(person['user'])
        if current is None or rank[person['state']] < rank[current['state']]:
            best[person['user']] = person
    return sorted(best.values(), key=lambda p: p['user'] != me_user)
