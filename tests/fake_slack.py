"""A fake Slack on loopback: the Web API methods the gateway calls (chat.postMessage, chat.update), recorded with the
token they came with, and `send`, which signs an Events API request with a signing secret and posts it to the app
as Slack does."""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx


@dataclass
class Call:
    method: str
    token: str
    body: dict[str, Any]
    at: float  # time.monotonic() when it arrived


class FakeSlack:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._ts = 1700000000
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers.get('Content-Length', 0))) or b'{}')
                method = self.path.rsplit('/', 1)[-1]
                with fake._lock:
                    fake._ts += 1
                    ts = body.get('ts') or f'{fake._ts}.000100'
                    fake.calls.append(Call(method, self.headers.get('Authorization', ''), body, time.monotonic()))
                answer = json.dumps({'ok': method in {'chat.postMessage', 'chat.update'}, 'ts': ts,
                                     'channel': body.get('channel')}).encode()
                self.send_response(200)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.api_base = f'http://127.0.0.1:{self.server.server_address[1]}/api'
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def posts(self, thread: str | None = None) -> list[str]:
        """The texts posted (chat.postMessage), in one thread or all."""
        with self._lock:
            return [c.body['text'] for c in self.calls
                    if c.method == 'chat.postMessage' and (thread is None or c.body.get('thread_ts') == thread)]

    def updates(self) -> list[str]:
        return [call.body['text'] for call in self.update_calls()]

    def update_calls(self) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == 'chat.update']


def signed(secret: str, body: bytes, stamp: int | None = None) -> dict[str, str]:
    stamp = int(time.time()) if stamp is None else stamp
    digest = hmac.new(secret.encode(), f'v0:{stamp}:'.encode() + body, hashlib.sha256).hexdigest()
    return {'X-Slack-Request-Timestamp': str(stamp), 'X-Slack-Signature': f'v0={digest}',
            'Content-Type': 'application/json'}


def message_event(event_id: str, user: str, text: str, ts: str, thread_ts: str | None = None,
                  channel: str = 'C0TEAM') -> bytes:
    event = {'type': 'message', 'user': user, 'text': text, 'ts': ts, 'channel': channel}
    if thread_ts:
        event['thread_ts'] = thread_ts
    return json.dumps({'type': 'event_callback', 'event_id': event_id, 'event_time': int(time.time()),
                       'event': event}).encode()


def send(url: str, secret: str, body: bytes, **headers: str) -> httpx.Response:
    """Post an event to the app's webhook as Slack does: signed with `secret`, now."""
    return httpx.post(url, content=body, headers={**signed(secret, body), **headers}, timeout=10)
