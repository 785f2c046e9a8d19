"""The tokens an agent run presents to the app's MCP server (`/mcp`, agor.agent_tools): short-lived JWTs (python-jose,
HS256) minted for one turn of one session.

Claims: `iss` agor, `aud` the MCP endpoint's URL (`Settings.mcp_url`), `sub` the session's creator (the user the run
acts as), `sid` the session, `turn` the turn being run, `iat`, `exp` (TOKEN_LIFETIME after minting) and a random `jti`.
The signing key is derived (HKDF-SHA256, its own label) from the instance master secret, so it is neither the master
secret nor the browser-session secret, and a copy of the database alone cannot forge a token. A valid signature is
not enough: agor.agent_tools checks on every call that the turn is still the session's running turn, so a token
ends with its run.
"""
from __future__ import annotations

import secrets
from datetime import timedelta
from functools import lru_cache
from typing import NamedTuple

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from jose import ExpiredSignatureError, JWTError, jwt

from .config import Settings
from .errors import DomainError
from .models import utcnow
from .secret_box import master_secret

ALGORITHM = 'HS256'
ISSUER = 'agor'
TOKEN_LIFETIME = timedelta(hours=12)  # a backstop: the token already ends with its turn


class InvalidToken(DomainError, status=401):
    """The bearer token is missing, forged, expired, for another endpoint, or its run has ended."""


class Claims(NamedTuple):
    user_id: str
    session_id: str
    turn_id: str


def mint(settings: Settings, user_id: str, session_id: str, turn_id: str,
         lifetime: timedelta = TOKEN_LIFETIME) -> str:
    now = utcnow()
    claims = {'iss': ISSUER, 'aud': settings.mcp_url, 'sub': user_id, 'sid': session_id, 'turn': turn_id,
              'iat': int(now.timestamp()), 'exp': int((now + lifetime).timestamp()), 'jti': secrets.token_urlsafe(16)}
    return jwt.encode(claims, _key(settings), algorithm=ALGORITHM)


def verify(settings: Settings, token: str) -> Claims:
    """The claims of a token this instance minted for its MCP endpoint and that has not expired; InvalidToken
    saying why not (never echoing the token)."""
    try:
        claims = jwt.decode(token, _key(settings), algorithms=[ALGORITHM], audience=settings.mcp_url, issuer=ISSUER,
                            options={'require_exp': True, 'require_sub': True})
    except ExpiredSignatureError:
        raise InvalidToken('The token has expired: each run gets a new one.') from None
    except JWTError:
        raise InvalidToken('The token is not valid for this MCP server.') from None
    if not all(isinstance(claims.get(name), str) for name in ('sub', 'sid', 'turn')):
        raise InvalidToken('The token is not valid for this MCP server.')
    return Claims(claims['sub'], claims['sid'], claims['turn'])


def _key(settings: Settings) -> bytes:
    given = settings.master_secret.get_secret_value() if settings.master_secret else None
    return _derive(master_secret(settings.data_dir, given))


@lru_cache(maxsize=4)
def _derive(secret: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b'agor mcp token signing v1').derive(
        secret.encode())


def bearer(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header value ('' when there is none): the one parser of the
    `/mcp` endpoint, its tool calls and the MCP proxy."""
    scheme, _, token = (authorization or '').partition(' ')
    return token.strip() if scheme.lower() == 'bearer' else ''
