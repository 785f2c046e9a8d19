"""The event bus of a cluster: several app processes share one Redis server and each delivers to its own subscribers.

`publish` queues the event, as JSON, for a publisher thread that sends it to one Redis channel; a listener thread
hands everything the channel carries (this process's own events too, so every process hears all events in the one
order Redis gives them) to a `LocalEventBus`, which delivers on the event loop exactly as in a single process.
A payload that does not serialize fails its publisher at once. While Redis is unreachable both threads retry every
second; what is published meanwhile waits in the queue (in order), what other processes publish is missed.
"""
from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable

import redis

from .events import Callback, Event, LocalEventBus

log = logging.getLogger(__name__)
CHANNEL = 'agor:events'
RETRY_SECONDS = 1.0
_STOP = object()


class RedisEventBus:
    def __init__(self, url: str, channel: str = CHANNEL) -> None:
        self.channel = channel
        self.local = LocalEventBus()
        self._redis = redis.Redis.from_url(url, socket_connect_timeout=5, health_check_interval=10)
        self._outbox: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = threading.Event()
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
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

    def _send(self) -> None:
        while (message := self._outbox.get()) is not _STOP:
            while True:
                try:
                    self._redis.publish(self.channel, message)
                    break
                except redis.RedisError as error:
                    if self._closed.is_set():
                        return
                    log.warning('Redis unreachable, an event waits to be published: %s', type(error).__name__)
                    time.sleep(RETRY_SECONDS)

    def _listen(self) -> None:
        while not self._closed.is_set():
            try:
                for message in self._pubsub.listen():
                    if message['type'] == 'message':
                        self._deliver(message['data'])
            except (redis.RedisError, OSError, ValueError) as error:
                if self._closed.is_set():
                    return
                log.warning('Redis unreachable, events of other processes are missed: %s', type(error).__name__)
                time.sleep(RETRY_SECONDS)

    def _deliver(self, data: bytes) -> None:
        try:
            event = json.loads(data)
            self.local.publish(event['topic'], event['payload'])
        except (ValueError, KeyError, TypeError):
            log.warning('a malformed message on %s was dropped', self.channel)
