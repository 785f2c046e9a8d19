"""SQLModel tables, one module per aggregate. Importing this package registers every table."""
from .agent_sessions import AgentSession, SessionAck, SessionFollow, SessionTurn, TranscriptEntry
from .approvals import Approval
from .base import new_id, utcnow
from .boards import Board, BoardMember, CardPlacement, Zone, ZoneFiring
from .comments import Comment, CommentReaction, Notification
from .gateway import GatewayChannel, GatewayEvent, GatewayIdentity, GatewayLinkCode, GatewayThread, GatewayTurn
from .mcp import McpClient, McpGrant, McpPendingFlow, McpServer, SessionMcpServer
from .personal import ApiKey, RuntimeSetting, UserAvatar
from .repos import Repo, Worktree
from .secrets import SecretCheck, SessionEnvSelection, UserSecret
from .users import Invite, Login, Role, User

__all__ = ['AgentSession', 'ApiKey', 'Approval', 'Board', 'BoardMember', 'CardPlacement', 'Comment', 'CommentReaction',
           'GatewayChannel', 'GatewayEvent', 'GatewayIdentity', 'GatewayLinkCode', 'GatewayThread', 'GatewayTurn',
           'Invite', 'Login', 'McpClient', 'McpGrant', 'McpPendingFlow', 'McpServer', 'Notification', 'Repo', 'Role',
           'RuntimeSetting', 'SecretCheck', 'SessionAck', 'SessionEnvSelection', 'SessionFollow', 'SessionMcpServer',
           'SessionTurn', 'TranscriptEntry', 'User', 'UserAvatar', 'UserSecret', 'Worktree', 'Zone',
           'ZoneFiring',
           'new_id', 'utcnow']
