"""The event bus of a cluster: several app processes share one Redis server and each delivers to its own subscribers.

`publish` queues the event, as JSON, for a publisher thread that sends it to one Redis channel; a listener thread
hands everything the channel carries (this process's own events too, so every process hears all events in the one
order Redis gives them) to a `LocalEventBus`, which delivers on the event loop exactly as in a single process.
A payload that does not serialize fails its publisher at once.

While Redis is unreachable (either thread fails; one warning in the log) the process goes on serving its own
viewers: what it publishes is delivered to its own subscribers only, at once, and is not sent later (a late event
could undo a newer one elsewhere). The listener reconnects by itself, the publisher asks every RETRY_SECONDS. Once
both work again, the process publishes `Resync` on `INSTANCE_TOPIC`: every page of the cluster built before that
moment reloads (pages/frame.py), so nobody keeps a view that missed events of the outage.
"""
from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable

import redis

from .events import INSTANCE_TOPIC, Callback, Event, LocalEventBus, Resync

log = logging.getLogger(__name__)
CHANNEL = 'agor:events'
RETRY_SECONDS = 1.0
SEND_TIMEOUT = 5.0  # s: a publish Redis does not answer in this time counts as Redis unreachable
_STOP = object()


class RedisEventBus:
    def __init__(self, url: str, channel: str = CHANNEL) -> None:
        self.channel = channel
        self.local = LocalEventBus()
        self._redis = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=SEND_TIMEOUT)
        self._listening = redis.Redis.from_url(url, socket_connect_timeout=5, health_check_interval=10)
        self._outbox: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._working = {'send': True, 'listen': True}  # the publisher's and the listener's connections
        self._lost_at: float | None = None  # when Redis became unreachable; None while it works
        self._pubsub = self._listening.pubsub()
        self._pubsub.subscribe(channel)  # before the first page is served: nothing published from now on is missed
        self._threads = [threading.Thread(target=self._send, name='redis-bus-publisher', daemon=True),
                         threading.Thread(target=self._listen, name='redis-bus-listener', daemon=True)]
        for thread in self._threads:
            thread.start()

    def bind_loop(self, loop) -> None:  # noqa: ANN001 (asyncio.AbstractEventLoop | None, as LocalEventBus)
        self.local.bind_loop(loop)

    def publish(self, topic: str, payload: Event) -> None:
        self._outbox.put(json.dumps({'topic': topic, 'payload': payload}, separators=(',', ':')))

    def subscribe(self, topic: str, callback: Callback) -> Callable[[], None]:
        return self.local.subscribe(topic, callback)

    def subscriber_count(self, topic: str) -> int:
        return self.local.subscriber_count(topic)

    def close(self) -> None:
        """Send what is queued (for up to a few seconds), then stop both threads."""
        self._outbox.put(_STOP)
        self._threads[0].join(5)
        self._closed.set()
        self._pubsub.close()
        self._threads[1].join(5)
        self._redis.close()
        self._listening.close()

    def _send(self) -> None:
        next_try = 0.0  # when a failed publisher asks Redis again: by the clock, however busy the outbox is
        while True:
            try:
                message = self._outbox.get(timeout=RETRY_SECONDS)
            except queue.Empty:
                message = None
            if message is _STOP:
                return
            if not self._working['send'] and time.monotonic() >= next_try:
                next_try = time.monotonic() + RETRY_SECONDS
                self._try_again()
            if message is None:
                continue
            if self._lost_at is not None:
                self._deliver(message)  # this process's viewers only, until Redis is back
                continue
            try:
                self._redis.publish(self.channel, message)
            except redis.RedisError as error:
                if self._closed.is_set():
                    return
                self._deliver(message)
                self._lost('send', type(error).__name__)

    def _try_again(self) -> None:
        try:
            self._redis.ping()
        except redis.RedisError:
            return
        self._back('send')

    def _listen(self) -> None:
        subscribed = False
        while not self._closed.is_set():
            try:
                for message in self._pubsub.listen():
                    if message['type'] == 'subscribe':  # the first time, and after each reconnection
                        if subscribed and self._working['listen']:  # the client reconnected by itself
                            self._lost('listen', 'reconnected')
                        subscribed = True
                        self._back('listen')
                    elif message['type'] == 'message':
                        self._deliver(message['data'])
            except (redis.RedisError, OSError, ValueError) as error:
                if self._closed.is_set():
                    return
                self._lost('listen', type(error).__name__)
                time.sleep(RETRY_SECONDS)

    def _lost(self, part: str, reason: str) -> None:
        """The publisher or the listener failed: one warning, however long it lasts."""
        with self._lock:
            self._working[part] = False
            if self._lost_at is not None:
                return
            self._lost_at = time.time()
        log.warning('Redis unreachable (%s): this process serves only its own viewers until it is back; every open '
                    'page of the cluster then reloads', reason)

    def _back(self, part: str) -> None:
        """The publisher or the listener works again: once both do after a loss, the cluster's pages re-read."""
        with self._lock:
            self._working[part] = True
            if self._lost_at is None or not all(self._working.values()):
                return
            down, self._lost_at = time.time() - self._lost_at, None
        log.warning('Redis reachable again after %.0f s: every open page of the cluster reloads', down)
        self.publish(INSTANCE_TOPIC, Resync(type='resync', until=time.time()))

    def _deliver(self, data: bytes | str) -> None:
        try:
            event = json.loads(data)
            self.local.publish(event['topic'], event['payload'])
        except (ValueError, KeyError, TypeError):
            log.warning('a malformed message on %s was dropped', self.channel)
