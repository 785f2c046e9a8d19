#!/bin/sh
# A stdio MCP server in POSIX sh (runs as any account, needs no Python): answers initialize and tools/list, with one
# tool named by $STUB_TOOL (so a test also sees that the server's env arrived). Requests carry numeric ids.
while IFS= read -r line; do
  id=$(printf '%s' "$line" | sed -n 's/.*"id":\([0-9][0-9]*\).*/\1/p')
  case "$line" in
    *'"method":"initialize"'*)
      printf '{"jsonrpc":"2.0","id":%s,"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{}},' "$id"
      printf '"serverInfo":{"name":"stub","version":"1"}}}\n' ;;
    *'"method":"tools/list"'*)
      printf '{"jsonrpc":"2.0","id":%s,"result":{"tools":[{"name":"%s","inputSchema":{"type":"object"}}]}}\n' \
        "$id" "${STUB_TOOL:-stub}" ;;
  esac
done
