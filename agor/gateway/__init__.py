"""The message gateway: chat channels (Slack first) whose messages start or continue sessions as the matched user.

- `channels`: what admins configure (channels, their sealed secrets and env, the identity map) and what launching a
  session of a channel reads (`env_for_session`, `origin`);
- `links`: a user's one-time codes and their linked chat accounts;
- `platform`: the small interface an adapter implements, `slack` the Slack one;
- `service`: a webhook request: verified, answered within the platform's deadline, its message handled after;
- `relay`: posts a bound session's progress, answers and board prompts to its thread (in the runner process).
"""
