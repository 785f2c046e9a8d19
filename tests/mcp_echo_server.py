"""A one-tool stdio MCP server for the agent runtime tests: `fake_echo(text)` answers `<ECHO_TAG>: <text>`.

ECHO_TAG comes from the server's environment, so a test also proves that the runtime passed the MCP server's env.
"""
import os

from mcp.server.mcpserver import MCPServer

server = MCPServer('echo')


@server.tool()
def fake_echo(text: str) -> str:
    """Echo the text back, prefixed with the server's tag."""
    return f'{os.environ.get("ECHO_TAG", "echo")}: {text}'


if __name__ == '__main__':
    server.run()
