"""Where sessions came from: the chat channel and the person who wrote, for cards and session headers. Imports only
the models, so the canvas and the sessions can ask."""
from __future__ import annotations

from sqlmodel import Session, col, select

from ..models import GatewayChannel, GatewayThread

PLATFORMS = {'slack': 'Slack'}


def labels(session: Session, session_ids: list[str]) -> dict[str, str]:
    """`Slack · #ops · U0123` for each of these sessions a gateway channel started."""
    if not session_ids:
        return {}
    rows = session.exec(select(GatewayThread, GatewayChannel)
                        .join(GatewayChannel, col(GatewayChannel.id) == GatewayThread.channel_id)
                        .where(col(GatewayThread.session_id).in_(session_ids))).all()
    return {thread.session_id: f'{PLATFORMS.get(channel.platform, channel.platform)} · {channel.name} · '
                               f'{thread.external_user}' for thread, channel in rows}


def label(session: Session, session_id: str) -> str | None:
    return labels(session, [session_id]).get(session_id)
