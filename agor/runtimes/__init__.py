"""Agent runtimes: run Claude Code, Codex, Gemini CLI, OpenCode or a shell command as one session turn.

Pure Python (no NiceGUI, no database): the session worker builds a `RunRequest`, calls `cli_process.run` and stores
the `TranscriptEvent`s and the `RunOutcome`. See docs/agent-runtimes.md.
"""
