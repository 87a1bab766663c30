"""The guard shrinks a real perflayer Cache registered as a reliever."""

from __future__ import annotations

import gc
import mmap
from pathlib import Path

from perflayer.cache import Cache
from perflayer.memory import Level, MemoryGuard, Reliever
from perflayer.memory._rss import RssReader
from perflayer.monitor import Monitor

MiB = 1 << 20


def test_guard_shrinks_a_real_cache_at_elevated() -> None:
    """At ELEVATED the guard asks the cache to drop a quarter of its entries."""
    mon = Monitor()
    cache = Cache(monitor=mon, name="mem-integration")
    for i in range(1000):
        cache.set(f"k{i}", "v" * 100)
    assert isinstance(cache, Reliever)
    gc.collect()  # earlier garbage freed now cannot lower RSS below the baseline later
    reader = RssReader()
    # only this process' RSS moves the level: not the host's PSI or a cgroup limit below it
    guard = MemoryGuard(
        limit=int((reader() + 30 * MiB) / 0.8),
        monitor=mon,
        psi=False,
        cgroup_root=str(Path(__file__).parent / "no-cgroup-here"),
    )
    reader.close()
    guard.register(cache)
    m = mmap.mmap(-1, 40 * MiB)
    page = b"\x01" * 4096
    for _ in range(40 * MiB // 4096):
        m.write(page)
    try:
        assert guard.check() == Level.ELEVATED
        assert cache.dbsize() == 750
        assert guard.metric_values()["relieved"] == 250
    finally:
        m.close()
        guard.close()
