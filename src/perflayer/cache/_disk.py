"""``DiskTier``: a size-bounded cache tier in one SQLite file (WAL), shared by processes.

Schema: ``entries(key BLOB PRIMARY KEY, value BLOB, expire REAL, access REAL, size INT)``
(keys as UTF-8, with ``surrogateescape`` so bytes keys that are not UTF-8 round-trip)
with indexes on ``access`` (eviction order: least recently read first) and ``expire``.
Expiry is checked on read (an expired row is a miss) and purged when the size bound is
enforced. ``max_bytes`` bounds the sum of key and value lengths; each process tracks an
estimate, and when it passes the bound the true sum is read and the oldest-read rows are
deleted down to 90 % of it.

Failures degrade: a file that is not a database or is malformed is moved aside
(``<path>.corrupt-<time>``) and recreated empty; a full disk makes ``set`` return False; a
locked database (another process writing for longer than ``busy_timeout``) costs a miss.
Each is counted in ``stats.errors``, logged once per outage, and retried after a backoff.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
import weakref
from typing import Any

from perflayer.cache._codec import Codec, CodecRefused, JsonCodec
from perflayer.cache._tiers import Breaker, TierStats
from perflayer.errors import CacheKeyError, ConfigError

__all__ = ["DiskTier"]

_log = logging.getLogger("perflayer.cache.tiers")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key BLOB PRIMARY KEY,
    value BLOB NOT NULL,
    expire REAL,
    access REAL NOT NULL,
    size INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_access ON entries(access);
CREATE INDEX IF NOT EXISTS entries_expire ON entries(expire) WHERE expire IS NOT NULL;
"""

# why: refreshing ``access`` is a write, which costs more than the read itself. A read notes
# the time in memory at most once a second per key, and the notes are written in one
# transaction per _TOUCH_BATCH keys (and before every eviction pass, so eviction sees them).
_ACCESS_GRANULARITY = 1.0
_TOUCH_BATCH = 256


_instances: weakref.WeakSet[DiskTier] = weakref.WeakSet()
_abandoned: list[sqlite3.Connection] = []


def _after_fork_in_child() -> None:
    """Abandon inherited SQLite connections and locks (SQLite forbids using them after fork)."""
    for t in list(_instances):
        t._lock = threading.Lock()
        if t._conn is not None:
            # kept, never closed or collected: SQLite must not touch a connection after fork
            _abandoned.append(t._conn)
        t._conn = None
        t._touched = {}


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _bkey(key: str) -> bytes:
    """Return the stored form of ``key``: UTF-8, surrogateescape (bytes keys round-trip)."""
    try:
        return key.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise CacheKeyError(
            f"key {key!r} has a lone surrogate that is not a bytes escape"
        ) from None


def _corrupt(exc: sqlite3.DatabaseError) -> bool:
    msg = str(exc).lower()
    return "not a database" in msg or "malformed" in msg or "corrupt" in msg


class DiskTier:
    """A cache tier in a SQLite file: TTLs, a byte bound with LRU eviction, safe codec.

    >>> import tempfile, os
    >>> t = DiskTier(os.path.join(tempfile.mkdtemp(), "c.db"), max_bytes=1 << 20)
    >>> t.set("k", {"a": 1}, ttl=60), t.get("k")
    (True, {'a': 1})
    >>> t.close()
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        max_bytes: int = 1 << 30,
        *,
        codec: Codec | None = None,
        name: str = "disk",
        busy_timeout: float = 0.2,
    ) -> None:
        if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
            raise ConfigError(f"DiskTier path must be a non-empty str or PathLike, got {path!r}")
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
            raise ConfigError(f"DiskTier max_bytes must be a positive int, got {max_bytes!r}")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"tier name must be a non-empty str, got {name!r}")
        if codec is not None and not isinstance(codec, Codec):
            raise ConfigError(f"codec must have encode() and decode(), got {codec!r}")
        if not isinstance(busy_timeout, (int, float)) or busy_timeout < 0:
            raise ConfigError(f"busy_timeout must be seconds >= 0, got {busy_timeout!r}")
        self.path = os.fspath(path)
        self.max_bytes = max_bytes
        self.codec: Codec = codec if codec is not None else JsonCodec()
        self.name = name
        self.stats = TierStats()
        self.busy_timeout = float(busy_timeout)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._bytes = 0
        self._closed = False
        self._full = False
        self._touched: dict[bytes, float] = {}
        self._ino: int | None = None
        self._breaker = Breaker(f"disk tier {name!r} ({self.path})")
        _instances.add(self)
        with self._lock:
            self._guard(self._connect)

    # ------------------------------------------------------------------ connection

    def _connect(self) -> sqlite3.Connection:
        """Open (or return) the connection; move a corrupt file aside and start fresh."""
        if self._conn is not None:
            return self._conn
        try:
            conn = self._open()
        except sqlite3.DatabaseError as exc:
            if not _corrupt(exc):
                raise
            self._quarantine(exc)
            conn = self._open()
        self._conn = conn
        row = conn.execute("SELECT COALESCE(SUM(size), 0) FROM entries").fetchone()
        self._bytes = int(row[0])
        return conn

    def _open(self) -> sqlite3.Connection:
        d = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(d, exist_ok=True)
        # why: autocommit (isolation_level=None): every statement is its own short transaction,
        # so a crash never leaves a half-written entry and readers never wait on us for long.
        conn = sqlite3.connect(
            self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            self._ino = os.stat(self.path).st_ino
        except OSError:
            self._ino = None
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
        except BaseException:
            conn.close()
            raise
        return conn

    def _quarantine(self, exc: BaseException) -> None:
        """Move a corrupt database (and its WAL files) aside so a fresh one can be made."""
        self._drop_conn()
        try:
            ino = os.stat(self.path).st_ino
        except OSError:
            ino = None
        if self._ino is not None and ino is not None and ino != self._ino:
            # another process already moved the corrupt file aside and made a fresh one
            self._ino = None
            return
        stamp = time.strftime("%Y%m%dT%H%M%S")
        for suffix in ("", "-wal", "-shm"):
            src = self.path + suffix
            if os.path.exists(src):
                try:
                    os.replace(src, f"{self.path}.corrupt-{stamp}-{os.getpid()}{suffix}")
                except OSError:
                    pass
        _log.warning("disk tier %r: %s is corrupt (%s); moved aside", self.name, self.path, exc)

    def _drop_conn(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error:
                pass

    def _guard(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` under the breaker; on failure count, heal, and return None.

        Call with ``self._lock`` held.
        """
        if self._closed:
            raise ConfigError(f"disk tier {self.name!r} is closed")
        if not self._breaker.open():
            self.stats.errors += 1
            return None
        try:
            out = fn(*args)
        except (sqlite3.Error, OSError) as exc:
            self.stats.errors += 1
            if isinstance(exc, sqlite3.OperationalError) and "full" in str(exc).lower():
                # a full disk fails writes only: reads stay on, no backoff; logged once
                if not self._full:
                    self._full = True
                    _log.warning("disk tier %r: %s is full; writes fail", self.name, self.path)
                return None
            if isinstance(exc, sqlite3.DatabaseError) and _corrupt(exc):
                # heal now: the file is moved aside and a fresh one opened, no backoff needed
                self._quarantine(exc)
                try:
                    self._connect()
                except (sqlite3.Error, OSError) as again:
                    self._breaker.failed(again)
                return None
            self._breaker.failed(exc)
            if not isinstance(exc, sqlite3.OperationalError):
                self._drop_conn()
            return None
        self._breaker.ok()
        return out

    def _wrote(self) -> None:
        if self._full:
            self._full = False
            _log.warning("disk tier %r: %s accepts writes again", self.name, self.path)

    # ------------------------------------------------------------------ Tier

    def _read(self, key: bytes) -> tuple[bytes, float | None] | None:
        conn = self._connect()
        now = time.time()
        row = conn.execute(
            "SELECT value, expire, access FROM entries WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            return None
        value, expire, access = row
        if expire is not None and expire <= now:
            return None
        if now - access > _ACCESS_GRANULARITY:
            touched = self._touched
            touched[key] = now
            if len(touched) >= _TOUCH_BATCH:
                self._flush_touched(conn)
        return bytes(value), (None if expire is None else expire - now)

    def _flush_touched(self, conn: sqlite3.Connection) -> None:
        """Write the buffered read times in one transaction."""
        if not self._touched:
            return
        rows = [(t, k) for k, t in self._touched.items()]
        self._touched.clear()
        conn.execute("BEGIN")
        try:
            conn.executemany("UPDATE entries SET access = ? WHERE key = ?", rows)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def get_with_ttl(self, key: str) -> tuple[Any, float | None] | None:
        """Return ``(value, seconds left or None)`` or None (miss, expired, or failure)."""
        with self._lock:
            bk = _bkey(key)
            row = self._guard(self._read, bk)
            if row is None:
                self.stats.misses += 1
                return None
            try:
                value = self.codec.decode(row[0])
            except CodecRefused as exc:
                self.stats.refused += 1
                self.stats.misses += 1
                _log.debug("disk tier %r: refused %r: %s", self.name, key, exc)
                self._guard(self._delete, bk)
                return None
            self.stats.hits += 1
            return value, row[1]

    def get(self, key: str) -> Any:
        """Return the value at ``key`` or None."""
        got = self.get_with_ttl(key)
        return None if got is None else got[0]

    def _write(self, key: bytes, data: bytes, expire: float | None, size: int) -> bool:
        conn = self._connect()
        old = conn.execute("SELECT size FROM entries WHERE key = ?", (key,)).fetchone()
        conn.execute(
            "INSERT OR REPLACE INTO entries (key, value, expire, access, size) "
            "VALUES (?, ?, ?, ?, ?)",
            (key, data, expire, time.time(), size),
        )
        self._bytes += size - (old[0] if old else 0)
        if self._bytes > self.max_bytes:
            self._evict(conn)
        self._wrote()
        return True

    def _evict(self, conn: sqlite3.Connection) -> None:
        """Purge expired rows, then delete least recently read rows down to 90 % of the bound."""
        self._flush_touched(conn)
        conn.execute("DELETE FROM entries WHERE expire IS NOT NULL AND expire <= ?", (time.time(),))
        total = int(conn.execute("SELECT COALESCE(SUM(size), 0) FROM entries").fetchone()[0])
        target = self.max_bytes * 9 // 10
        while total > target:
            rows = conn.execute("SELECT key, size FROM entries ORDER BY access LIMIT 64").fetchall()
            if not rows:
                break
            drop: list[bytes] = []
            for k, size in rows:
                if total <= target:
                    break
                drop.append(k)
                total -= size
            conn.executemany("DELETE FROM entries WHERE key = ?", [(k,) for k in drop])
        self._bytes = total

    def set(self, key: str, value: Any, ttl: float | None = None) -> bool:
        """Store ``value`` (encoded by the codec); False if too large or the disk failed."""
        data = self.codec.encode(value)  # misuse (an unencodable value) raises TypeError here
        bk = _bkey(key)
        size = len(data) + len(bk)
        self.stats.sets += 1
        if size > self.max_bytes:
            return False
        expire = None if ttl is None else time.time() + ttl
        with self._lock:
            return bool(self._guard(self._write, bk, data, expire, size))

    def _delete(self, key: bytes) -> bool:
        conn = self._connect()
        row = conn.execute("DELETE FROM entries WHERE key = ? RETURNING size", (key,)).fetchone()
        if row is None:
            return False
        self._bytes -= int(row[0])
        return True

    def delete(self, key: str) -> bool:
        """Remove ``key``; True if it was there."""
        self.stats.deletes += 1
        with self._lock:
            return bool(self._guard(self._delete, _bkey(key)))

    def _clear(self) -> None:
        self._connect().execute("DELETE FROM entries")
        self._bytes = 0

    def clear(self) -> None:
        """Remove every entry."""
        with self._lock:
            self._guard(self._clear)

    def healthy(self) -> bool:
        """Return False while the file is failing (in backoff)."""
        return not self._breaker.down

    def volume(self) -> int:
        """Return this process's estimate of the stored bytes (keys + encoded values)."""
        return self._bytes

    def close(self) -> None:
        """Close the database; idempotent."""
        with self._lock:
            if self._closed:
                return
            if self._conn is not None and self._touched:
                self._guard(self._flush_touched, self._conn)
            self._closed = True
            self._drop_conn()

    def __repr__(self) -> str:
        """Return a short description."""
        return f"DiskTier({self.path!r}, max_bytes={self.max_bytes}, name={self.name!r})"
