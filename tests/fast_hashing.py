"""A pytest plugin for the mutation run (scripts/mutate): argon2 with its cheapest parameters, so that a test's users
are made in milliseconds instead of a second each. Passwords are still hashed and verified by argon2; only the cost
differs. The ordinary suite does not load it."""
from __future__ import annotations

from argon2 import PasswordHasher

from agor import auth


def pytest_configure(config) -> None:
    auth._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    auth._DUMMY_HASH = auth._hasher.hash('not-a-real-password')
