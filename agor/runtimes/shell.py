"""The shell runtime: the prompt is a `bash -lc` command run in the worktree. Needs no account (demo mode)."""
from __future__ import annotations

from .base import LaunchSpec, Mode, RunRequest, Runtime, TranscriptEvent, Turn


class ShellRuntime(Runtime):
    name = 'shell'
    label = 'Shell'
    binary = 'bash'
    permission_modes = {'default': Mode([], 'Runs the prompt as a bash command in the worktree (as you).')}
    unattended = 'Nothing asks: the command runs as typed.'

    def missing_message(self) -> str:
        return 'bash is not installed on the server'

    def build(self, request: RunRequest) -> LaunchSpec:
        return LaunchSpec(['bash', '-lc', '--', request.prompt], dict(request.env), merge_stderr=True)

    def parse_line(self, line: str, turn: Turn) -> list[TranscriptEvent]:
        """Every output line (stdout and stderr) continues the reply."""
        return [TranscriptEvent('assistant', line if line.endswith('\n') else line + '\n', {'delta': True})]
