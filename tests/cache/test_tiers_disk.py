"""DiskTier on a real SQLite file: TTLs, the byte bound, corruption and a full disk."""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from perflayer.cache import _disk
from perflayer.cache._codec import PickleCodec
from perflayer.cache._disk import DiskTier
from perflayer.cache._tiers import Tier
from perflayer.errors import ConfigError

KEY = b"s" * 32


@pytest.fixture
def tier(tmp_path: Path) -> Iterator[DiskTier]:
    """Return a DiskTier in a fresh directory, closed afterwards."""
    t = DiskTier(tmp_path / "cache.db", max_bytes=1 << 20)
    yield t
    t.close()


def test_round_trip_types_and_protocol(tier: DiskTier) -> None:
    """Values come back with their types; the tier satisfies the Tier protocol."""
    assert isinstance(tier, Tier)
    for i, value in enumerate(["s", b"\x00b", 3, 2.5, {"a": [1, None, True]}]):
        assert tier.set(f"k{i}", value) is True
        assert tier.get(f"k{i}") == value
    assert tier.get("absent") is None
    assert tier.stats.hits == 5 and tier.stats.misses == 1


def test_ttl_expiry_and_remaining_ttl(tier: DiskTier) -> None:
    """An entry past its TTL is a miss; get_with_ttl reports the seconds left."""
    tier.set("short", "v", ttl=0.05)
    tier.set("long", "v", ttl=100)
    got = tier.get_with_ttl("long")
    assert got is not None and got[0] == "v" and got[1] is not None and 0 < got[1] <= 100
    time.sleep(0.1)
    assert tier.get("short") is None
    assert tier.get("long") == "v"


def test_delete_and_clear(tier: DiskTier) -> None:
    """delete reports presence; clear empties the file and the byte estimate."""
    tier.set("a", 1)
    tier.set("b", 2)
    assert tier.delete("a") is True
    assert tier.delete("a") is False
    tier.clear()
    assert tier.get("b") is None
    assert tier.volume() == 0


def test_size_bound_evicts_least_recently_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past max_bytes the oldest-read rows go first; a recently read row survives."""
    monkeypatch.setattr(_disk, "_ACCESS_GRANULARITY", 0.0)
    t = DiskTier(tmp_path / "small.db", max_bytes=4000)
    try:
        for i in range(6):
            assert t.set(f"k{i}", "x" * 500)
        assert t.get("k0") == "x" * 500  # k0 becomes the most recently read
        for i in range(6, 12):
            t.set(f"k{i}", "x" * 500)
        assert t.volume() <= 4000
        assert t.get("k0") == "x" * 500
        assert t.get("k1") is None
        assert t.get("k11") == "x" * 500
        rows = sqlite3.connect(t.path).execute("SELECT SUM(size) FROM entries").fetchone()
        assert rows[0] == t.volume()
        assert t.set("huge", "y" * 5000) is False  # larger than the whole bound: refused
    finally:
        t.close()


def test_garbage_file_is_moved_aside_and_replaced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A file that is not a database is quarantined, logged once, and the tier works."""
    path = tmp_path / "c.db"
    path.write_bytes(b"not a database at all " * 500)
    with caplog.at_level(logging.WARNING, logger="perflayer.cache.tiers"):
        t = DiskTier(path)
        try:
            assert t.get("k") is None
            assert t.set("k", "v") is True
            assert t.get("k") == "v"
        finally:
            t.close()
    assert [m for m in caplog.messages if "corrupt" in m] != []
    assert len([m for m in caplog.messages if "corrupt" in m]) == 1
    assert any(p.name.startswith("c.db.corrupt-") for p in tmp_path.iterdir())


def test_database_corrupted_behind_our_back_degrades_to_misses(tmp_path: Path) -> None:
    """Pages overwritten with garbage cost a counted miss, then the tier heals by itself."""
    path = tmp_path / "c.db"
    t = DiskTier(path)
    for i in range(200):
        t.set(f"k{i}", "x" * 500)
    t.close()
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.seek(4096)
        f.write(os.urandom(size - 4096))
    t = DiskTier(path)
    try:
        assert t.get("k150") is None
        assert t.stats.errors >= 1
        assert t.set("fresh", 1) is True
        assert t.get("fresh") == 1
        assert t.healthy()
    finally:
        t.close()


def test_full_disk_fails_writes_not_reads(tier: DiskTier) -> None:
    """SQLite's "database or disk is full" makes set return False; reads keep working."""
    assert tier.set("small", 1)
    assert tier._conn is not None
    tier._conn.execute("PRAGMA max_page_count = 10")  # a real SQLITE_FULL, not a mock
    results = [tier.set(f"big{i}", "y" * 3000) for i in range(10)]
    assert False in results
    assert tier.stats.errors >= 1
    assert tier.get("small") == 1
    assert tier.healthy()


def test_signed_pickle_round_trip_and_tampered_row_refused(tmp_path: Path) -> None:
    """A PickleCodec tier stores any object; a row tampered in the file is refused and counted."""
    t = DiskTier(tmp_path / "p.db", codec=PickleCodec(KEY))
    try:
        t.set("obj", {1, 2, 3})
        assert t.get("obj") == {1, 2, 3}
        raw = sqlite3.connect(t.path, isolation_level=None)
        (blob,) = raw.execute("SELECT value FROM entries WHERE key = ?", (b"obj",)).fetchone()
        raw.execute("UPDATE entries SET value = ? WHERE key = ?", (blob[:-1] + b"\x00", b"obj"))
        raw.close()
        assert t.get("obj") is None
        assert t.stats.refused == 1
        assert t.get("obj") is None  # the refused row was dropped
    finally:
        t.close()


def test_json_tier_refuses_pickle_written_by_someone_else(tmp_path: Path) -> None:
    """A default (JSON) tier never unpickles, even a validly signed row from a pickle tier."""
    path = tmp_path / "shared.db"
    writer = DiskTier(path, codec=PickleCodec(KEY))
    reader = DiskTier(path)
    try:
        writer.set("obj", {1, 2})
        assert reader.get("obj") is None
        assert reader.stats.refused == 1
    finally:
        writer.close()
        reader.close()


def test_unencodable_value_raises_before_writing(tier: DiskTier) -> None:
    """A value the codec cannot hold is misuse: TypeError, nothing written."""
    with pytest.raises(TypeError, match="tuple"):
        tier.set("t", (1, 2))
    assert tier.get("t") is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"path": ""}, "path"),
        ({"path": "x.db", "max_bytes": 0}, "max_bytes"),
        ({"path": "x.db", "max_bytes": True}, "max_bytes"),
        ({"path": "x.db", "name": ""}, "tier name"),
        ({"path": "x.db", "codec": object()}, "codec"),
    ],
)
def test_bad_settings_raise_config_error(kwargs: dict[str, object], match: str) -> None:
    """Bad arguments raise ConfigError naming the value."""
    with pytest.raises(ConfigError, match=match):
        DiskTier(**kwargs)  # type: ignore[arg-type]


def test_closed_tier_raises(tmp_path: Path) -> None:
    """Using a closed tier is misuse, not an outage."""
    t = DiskTier(tmp_path / "c.db")
    t.close()
    t.close()
    with pytest.raises(ConfigError, match="closed"):
        t.get("k")


def test_buffered_read_times_reach_the_file_on_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read's access time is buffered, then written when the tier closes."""
    monkeypatch.setattr(_disk, "_ACCESS_GRANULARITY", 0.0)
    t = DiskTier(tmp_path / "a.db")
    t.set("k", 1)
    raw = sqlite3.connect(t.path)
    (before,) = raw.execute("SELECT access FROM entries WHERE key = ?", (b"k",)).fetchone()
    time.sleep(0.01)
    assert t.get("k") == 1
    t.close()
    (after,) = raw.execute("SELECT access FROM entries WHERE key = ?", (b"k",)).fetchone()
    raw.close()
    assert after > before
