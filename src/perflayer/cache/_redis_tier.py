"""``RedisTier``: a cache tier on a Redis server (redis-py), with an invalidation channel.

Keys live under ``prefix``; TTLs are Redis' own (``SET ... PX``). Every write and delete also
PUBLISHes ``<origin>\\x00<key>`` on ``<prefix>__invalidate__`` in the same round trip (one
small Lua script, so a write and its message are atomic), and ``clear`` publishes
``<origin>\\x00\\x00*``. ``listen(on_key, on_flush)`` runs a daemon thread that SUBSCRIBEs
there and calls back for messages of other origins, so a ``TieredCache`` can drop the key from
its near tiers. See docs/tiers.md for why pub/sub rather than RESP3 client-side caching.

A dead or slow server costs a miss: sockets time out after ``timeout`` seconds, redis-py's own
retries are off, and after a failure the tier answers misses without trying until an
exponential backoff (50 ms doubling to 5 s) has passed; the first failure and the recovery of
each outage are logged once.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from typing import Any

from perflayer.cache._codec import Codec, CodecRefused, JsonCodec
from perflayer.cache._tiers import Breaker, TierStats
from perflayer.errors import ConfigError

__all__ = ["RedisTier"]

_log = logging.getLogger("perflayer.cache.tiers")

_FLUSH = "\x00*"

# why: one EVALSHA instead of a pipeline: the same single round trip, but redis-py's pipeline
# object costs ~40 us of Python per call, which doubled the cost of a write-through SET.
# The channel is an ARGV, not a KEY, so the scripts also run on a cluster.
_SET = (
    "if ARGV[2] == '' then redis.call('SET', KEYS[1], ARGV[1]) "
    "else redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end "
    "redis.call('PUBLISH', ARGV[3], ARGV[4]) return 1"
)
_DEL = "local n = redis.call('DEL', KEYS[1]) redis.call('PUBLISH', ARGV[1], ARGV[2]) return n"
_GET = "return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}"


_instances: weakref.WeakSet[RedisTier] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    """Mark every tier as forked; each restarts its listener on its next call."""
    for t in list(_instances):
        t._forked = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _redis() -> Any:
    try:
        import redis
    except ImportError:  # pragma: no cover - redis is in the dev group
        raise ImportError("RedisTier needs redis-py: pip install 'perflayer[redis]'") from None
    return redis


class RedisTier:
    """A cache tier on Redis: prefixed keys, server-side TTLs, short timeouts, backoff.

    >>> t = RedisTier("redis://127.0.0.1:6379/0", prefix="app:")  # doctest: +SKIP
    >>> t.set("k", {"a": 1}, ttl=60), t.get("k")  # doctest: +SKIP
    (True, {'a': 1})
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "perflayer:",
        codec: Codec | None = None,
        name: str = "redis",
        timeout: float = 0.25,
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(f"RedisTier url must be redis://, rediss:// or unix://, got {url!r}")
        if not isinstance(prefix, str):
            raise ConfigError(f"RedisTier prefix must be a str, got {prefix!r}")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"tier name must be a non-empty str, got {name!r}")
        if codec is not None and not isinstance(codec, Codec):
            raise ConfigError(f"codec must have encode() and decode(), got {codec!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ConfigError(f"RedisTier timeout must be seconds > 0, got {timeout!r}")
        redis = _redis()
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.url = url
        self.prefix = prefix
        self.codec: Codec = codec if codec is not None else JsonCodec()
        self.name = name
        self.timeout = float(timeout)
        self.stats = TierStats()
        self.channel = prefix + "__invalidate__"
        self.origin = self._new_origin()
        self._kw: dict[str, Any] = {
            "socket_timeout": self.timeout,
            "socket_connect_timeout": self.timeout,
            # why: redis-py >= 6 retries 3 times with up to seconds of backoff by default; a
            # cache would rather miss now and let our breaker decide when to try again.
            "retry": Retry(NoBackoff(), 0),
            # keys are str; bytes keys arrive decoded with surrogateescape and must round-trip
            "encoding_errors": "surrogateescape",
        }
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self._noscript: type[BaseException] = redis.exceptions.NoScriptError
        self._sha = {
            src: hashlib.sha1(src.encode(), usedforsecurity=False).hexdigest()
            for src in (_SET, _DEL, _GET)
        }
        self._client = redis.Redis.from_url(url, **self._kw)
        self._breaker = Breaker(f"redis tier {name!r} ({url})")
        self._listener: threading.Thread | None = None
        self._stop = threading.Event()
        self._pubsub: Any = None
        self._closed = False
        self.subscribed = False
        self.reconnects = 0
        #: CLIENT SETNAME of the subscriber connection (find it in CLIENT LIST)
        self.listener_name = f"perflayer-invalidate-{self.origin}"
        #: seconds of silence on the invalidation channel before it is PINGed
        self.ping_every = 5.0
        self._callbacks: tuple[Callable[[str], None], Callable[[], None]] | None = None
        self._forked = False
        _instances.add(self)

    @staticmethod
    def _new_origin() -> str:
        return f"{os.getpid()}-{uuid.uuid4().hex[:12]}"

    def _restart_after_fork(self) -> None:
        """In a forked child: take a new origin and start this process's own listener.

        The parent's listener thread does not exist here, and sharing its origin would make
        this process ignore the parent's writes (and the parent ignore ours). The inherited
        near tiers are flushed, since messages between the fork and the new subscription
        are not seen.
        """
        self._forked = False
        self.origin = self._new_origin()
        self.listener_name = f"perflayer-invalidate-{self.origin}"
        self._stop = threading.Event()
        self._pubsub = None
        self.subscribed = False
        cbs = self._callbacks
        self._listener = None
        if cbs is not None and not self._closed:
            cbs[1]()
            self.listen(*cbs, ready_timeout=0)

    # ------------------------------------------------------------------ guarded calls

    def _call(self, fn: Callable[[], Any]) -> tuple[bool, Any]:
        """Run ``fn`` under the breaker; return (ok, result); failures are counted."""
        if self._closed:
            raise ConfigError(f"redis tier {self.name!r} is closed")
        if self._forked:
            self._restart_after_fork()
        if not self._breaker.open():
            self.stats.errors += 1
            return False, None
        try:
            out = fn()
        except self._errors as exc:
            self.stats.errors += 1
            self._breaker.failed(exc)
            return False, None
        self._breaker.ok()
        return True, out

    def _eval(self, script: str, sha: str, key: str, *args: Any) -> Any:
        """Run a script by its SHA, loading it on the server's first NOSCRIPT."""
        try:
            return self._client.execute_command("EVALSHA", sha, 1, key, *args)
        except self._noscript:
            return self._client.execute_command("EVAL", script, 1, key, *args)

    def _k(self, key: str) -> str:
        return self.prefix + key

    def _note(self, key: str) -> str:
        return f"{self.origin}\x00{key}"

    # ------------------------------------------------------------------ Tier

    def get_with_ttl(self, key: str) -> tuple[Any, float | None] | None:
        """Return ``(value, seconds left or None)`` or None (miss, refused, or failure)."""
        k = self._k(key)

        ok, out = self._call(lambda: self._eval(_GET, self._sha[_GET], k))
        if not ok or out[0] is None:
            self.stats.misses += 1
            return None
        data, pttl = out
        try:
            value = self.codec.decode(data)
        except CodecRefused as exc:
            self.stats.refused += 1
            self.stats.misses += 1
            _log.debug("redis tier %r: refused %r: %s", self.name, key, exc)
            return None
        self.stats.hits += 1
        return value, (pttl / 1000.0 if pttl and pttl > 0 else None)

    def get(self, key: str) -> Any:
        """Return the value at ``key`` or None."""
        k = self._k(key)
        ok, data = self._call(lambda: self._client.get(k))
        if not ok or data is None:
            self.stats.misses += 1
            return None
        try:
            value = self.codec.decode(data)
        except CodecRefused:
            self.stats.refused += 1
            self.stats.misses += 1
            return None
        self.stats.hits += 1
        return value

    def set(self, key: str, value: Any, ttl: float | None = None) -> bool:
        """SET the encoded value (PX for a ttl) and publish an invalidation; False on failure."""
        data = self.codec.encode(value)  # misuse (an unencodable value) raises TypeError here
        self.stats.sets += 1
        px = None if ttl is None else max(1, int(ttl * 1000.0 + 0.999))
        k = self._k(key)

        sha = self._sha[_SET]
        ttl_arg = "" if px is None else str(px)
        # the note is made inside the call: after a fork, _call first gives us a new origin
        return self._call(
            lambda: self._eval(_SET, sha, k, data, ttl_arg, self.channel, self._note(key))
        )[0]

    def delete(self, key: str) -> bool:
        """DEL the key and publish an invalidation; True if it was there."""
        self.stats.deletes += 1
        k = self._k(key)

        ok, out = self._call(
            lambda: self._eval(_DEL, self._sha[_DEL], k, self.channel, self._note(key))
        )
        return bool(ok and out)

    def clear(self) -> None:
        """Delete every key under the prefix (SCAN + UNLINK) and publish a flush."""
        if not self.prefix:
            raise ConfigError("RedisTier.clear() needs a non-empty prefix (it would flush all)")
        pattern = self.prefix.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?")
        pattern = pattern.replace("[", "\\[") + "*"

        def run() -> None:
            batch: list[Any] = []
            for k in self._client.scan_iter(match=pattern, count=500):
                batch.append(k)
                if len(batch) >= 500:
                    self._client.unlink(*batch)
                    batch.clear()
            if batch:
                self._client.unlink(*batch)
            self._client.publish(self.channel, self._note(_FLUSH))

        self._call(run)

    def healthy(self) -> bool:
        """Return False while Redis is failing (in backoff)."""
        return not self._breaker.down

    # ------------------------------------------------------------------ invalidation channel

    def listen(
        self,
        on_key: Callable[[str], None],
        on_flush: Callable[[], None],
        *,
        ready_timeout: float | None = None,
    ) -> None:
        """Start the daemon thread that calls ``on_key(key)`` / ``on_flush()`` for others' writes.

        ``on_flush`` is also called when the subscription comes back after a drop (messages may
        have been lost meanwhile). Waits up to ``ready_timeout`` (default: 4 x ``timeout``) for
        the first subscription; if Redis is down, the thread keeps retrying with backoff.
        """
        if self._listener is not None:
            raise ConfigError(f"redis tier {self.name!r} already has a listener")
        ready = threading.Event()
        t = threading.Thread(
            target=self._listen_loop,
            args=(on_key, on_flush, ready),
            name=f"perflayer-invalidate-{self.name}",
            daemon=True,
        )
        self._listener = t
        self._callbacks = (on_key, on_flush)
        t.start()
        ready.wait(self.timeout * 4 if ready_timeout is None else ready_timeout)

    def _listen_loop(
        self,
        on_key: Callable[[str], None],
        on_flush: Callable[[], None],
        ready: threading.Event,
    ) -> None:
        redis = _redis()
        breaker = Breaker(f"redis tier {self.name!r} invalidation channel ({self.url})")
        first = True
        origin_prefix = self.origin + "\x00"
        while not self._stop.is_set():
            client = None
            try:
                client = redis.Redis.from_url(self.url, client_name=self.listener_name, **self._kw)
                ps = client.pubsub(ignore_subscribe_messages=True)
                self._pubsub = ps
                ps.subscribe(self.channel)
                # the SUBSCRIBE reply confirms the subscription before anyone relies on it
                while ps.get_message(timeout=self.timeout) is None and not ps.subscribed:
                    pass
                breaker.ok()
                self.subscribed = True
                if not first:
                    # messages published while we were away are lost: drop the near tiers
                    self.reconnects += 1
                    on_flush()
                first = False
                ready.set()
                last = time.monotonic()
                pinged = False
                while not self._stop.is_set():
                    msg = ps.get_message(timeout=0.5)
                    if msg is None:
                        # a half-open connection (a partition, a NAT drop) delivers nothing
                        # and raises nothing: PING when idle, reconnect if no PONG comes back
                        idle = time.monotonic() - last
                        if idle > self.ping_every + max(1.0, 4 * self.timeout):
                            raise redis.ConnectionError("invalidation channel: no PONG")
                        if idle > self.ping_every and not pinged:
                            ps.ping()
                            pinged = True
                        continue
                    last = time.monotonic()
                    pinged = False
                    if msg.get("type") != "message":
                        continue
                    data = msg["data"]
                    text = (
                        data.decode("utf-8", "surrogateescape") if isinstance(data, bytes) else data
                    )
                    if text.startswith(origin_prefix):
                        continue
                    _, _, key = text.partition("\x00")
                    if key == _FLUSH:
                        on_flush()
                    else:
                        on_key(key)
            except Exception as exc:  # a dropped connection, or a bug in a callback
                self.subscribed = False
                first = False
                ready.set()
                breaker.failed(exc)
                self._stop.wait(breaker._backoff)
            finally:
                ps_, self._pubsub = self._pubsub, None
                if ps_ is not None:
                    try:
                        ps_.close()
                    except Exception:
                        pass
                if client is not None:
                    try:
                        client.close()
                    except Exception:
                        pass
        self.subscribed = False

    def close(self) -> None:
        """Stop the listener and close connections; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        t = self._listener
        if t is not None:
            if self.subscribed:
                # why: wake the listener out of its 0.5 s wait (our own origin: it is ignored)
                try:
                    self._client.publish(self.channel, self._note("\x00wake"))
                except self._errors:
                    pass
            t.join(timeout=2.0)
        try:
            self._client.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        """Return a short description."""
        return f"RedisTier({self.url!r}, prefix={self.prefix!r}, name={self.name!r})"
