"""The Redis broker transport every process uses (CELERY_BROKER_TRANSPORT): kombu's, made to survive a restart.

Why: with celery 5.7.0 and kombu 5.7.0, a worker whose Redis restarts while a task runs dies with
"Unrecoverable error: AttributeError: 'NoneType' object has no attribute 'hostname'". On the connection
loss the consumer first ``collect()``s the connection: the Redis channel's ``close()`` tries to finish the
BRPOP it was waiting on, that read fails (Redis is gone), and the channel stays open; ``collect()`` then
detaches the transport from its connection. Celery 5.7 closes the connection a second time, the channel's
``close()`` now tries to restore the unacknowledged message through a transport with no connection, and
the AttributeError is not one of the errors the consumer treats as recoverable. Celery 5.6.3 (which does
not close twice) survives; this transport lets 5.7 survive too, and in addition lets the task that was
running acknowledge its message once Redis is back (otherwise the acknowledgement is lost and the message
comes back after the visibility timeout; the job runner would then find the job finished and return).

tests/core/test_job_recovery.py restarts a real redis-server under a worker with a job in flight.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis


class RedisChannel(redis.Channel):
    """kombu's Redis channel, whose close() completes when the socket is dead and whose acks outlive it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The kombu Connection this channel was opened for; the transport forgets it when collected.
        self._opened_for = self.connection.client

    def close(self) -> None:
        """Close; if finishing the pending BRPOP read fails (the broker is gone), close without it."""
        try:
            super().close()
        except self.connection.connection_errors:
            if self.closed:
                raise
            self._in_poll = None  # nothing more will arrive on that socket
            super().close()

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        # A message taken before the connection was lost is acknowledged through this (old) channel once
        # the task ends: reconnect with the parameters it was opened with.
        if self.connection.client is None:
            self.connection.client = self._opened_for
        return super()._connparams(asynchronous=asynchronous)  # type: ignore[misc]


class RedisTransport(redis.Transport):
    """kombu's Redis transport with :class:`RedisChannel`."""

    Channel = RedisChannel
