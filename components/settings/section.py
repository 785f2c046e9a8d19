"""One page of the Settings dialog: where it sits in the left rail and how it builds itself."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Section:
    group: str  # the rail's heading: 'Profile' or 'Agentic Tools'
    key: str  # the deep link: ?settings=<key>
    label: str
    build: Callable[[str], None]  # builds the page into the current container for the user id; handlers use act()
