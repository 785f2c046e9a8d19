"""A stdio MCP server for Test connection, started as a run would start it: as the Unix account `unix_user_mode` gives
the acting admin (`unix_accounts.account_for`: the app's own in simple mode, the executor in insulated, the admin's
mapped account in strict; never root), from the env allowlist plus the server's own variables, in its own process
group. So an admin's command reads no more of the data dir (master secret, session secret, database) than a
session's agent can.

The mcp SDK's `stdio_client` spawns as the app's account and cannot switch, so this is the same newline-delimited
JSON-RPC transport over the process's stdin/stdout, as the (read, write) streams `ClientSession` takes."""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import mcp_types
from mcp.shared.message import SessionMessage

from . import unix_accounts
from .credentials import allowed_app_env
from .runtimes.cli_process import stop_process_group

LINE_LIMIT = 16 * 1024 * 1024


@contextlib.asynccontextmanager
async def streams(account: unix_accounts.Account, command: str, args: list[str],
                  env: dict[str, str]) -> AsyncIterator[tuple[Any, Any]]:
    """(read, write) streams of the server `command args` running as `account` with `env` over the allowlist; the
    process group is stopped when the block ends."""
    home = Path(account.home)
    process = await asyncio.create_subprocess_exec(
        command, *args, env={**unix_accounts.login_env(account), **allowed_app_env(), **env},
        cwd=home if home.is_dir() else '/', stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL, start_new_session=True, limit=LINE_LIMIT,
        preexec_fn=unix_accounts.become(account))
    read_writer, read = anyio.create_memory_object_stream[Any](0)
    write, write_reader = anyio.create_memory_object_stream[SessionMessage](0)

    async def from_server() -> None:
        async with read_writer:
            async for line in process.stdout:  # type: ignore[union-attr]
                if not line.strip():
                    continue
                try:
                    message: Any = SessionMessage(mcp_types.jsonrpc_message_adapter.validate_json(line))
                except ValueError as error:
                    message = error
                await read_writer.send(message)

    async def to_server() -> None:
        async with write_reader:
            async for message in write_reader:
                data = message.message.model_dump_json(by_alias=True, exclude_unset=True)
                process.stdin.write(f'{data}\n'.encode())  # type: ignore[union-attr]
                await process.stdin.drain()  # type: ignore[union-attr]

    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(from_server)
            tasks.start_soon(to_server)
            try:
                yield read, write
            finally:
                tasks.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await stop_process_group(process.pid, grace=2)
            with contextlib.suppress(ProcessLookupError):
                await process.wait()
