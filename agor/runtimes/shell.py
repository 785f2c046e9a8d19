"""The shell runtime: the prompt is a `bash -lc` command run in the worktree. Needs no account (demo mode)."""
from __future__ import annotations

from .base import LaunchSpec, RunRequest, Runtime, TranscriptEvent, Turn


class ShellRuntime(Runtime):
    name = 'shell'

    def missing_message(self) -> str:
        return 'bash is not installed on the server'

    def build(self, request: RunRequest) -> LaunchSpec:
        return LaunchSpec(['bash', '-lc', '--', request.prompt], dict(request.env), merge_stderr=True)

    def parse_line(self, line: str, turn: Turn) -> list[TranscriptEvent]:
        """Every output line (stdout and stderr) continues the reply."""
        return [TranscriptEvent('assistant', line if line.endswith('\n') else line + '\n', {'delta': True})]
