"""MemoryGuard against real RSS: levels, hysteresis, callbacks, relievers, safety mode, metrics."""

from __future__ import annotations

import asyncio
import gc
import logging
import mmap
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from perflayer.errors import ConfigError, MemoryPressureError
from perflayer.memory import Level, LevelChange, MemoryGuard, Reliever
from perflayer.memory._rss import RssReader
from perflayer.monitor import Monitor

MiB = 1 << 20

# The level tests set their own limit from this process' RSS: the host's memory pressure (PSI)
# and a cgroup limit below that would move the levels, so they are kept out (each has its own
# tests, on fake /proc and cgroup trees).
ISOLATED: dict[str, object] = {
    "psi": False,
    "cgroup_root": str(Path(__file__).parent / "no-cgroup-here"),
}


def rss_now() -> int:
    """Read this process' RSS."""
    reader = RssReader()
    try:
        return reader()
    finally:
        reader.close()


def touched(n: int) -> mmap.mmap:
    """Map ``n`` bytes and write every page, so they are resident until the map is dropped.

    An mmap, not bytes: glibc's dynamic mmap threshold would serve a second big ``bytes`` from
    the heap, and freeing it would not lower RSS.
    """
    m = mmap.mmap(-1, max(n, 4096))
    page = b"\x01" * 4096
    for _ in range(max(n, 4096) // 4096):
        m.write(page)
    return m


def guard_near(warn_headroom: int = 40 * MiB, **kw: object) -> MemoryGuard:
    """A guard whose warning line sits ``warn_headroom`` above the current RSS.

    Earlier tests' garbage is collected first, so the gc pass the guard runs on relief (or
    any later collection) cannot shrink RSS below the baseline in the middle of a test.
    """
    gc.collect()
    limit = int((rss_now() + warn_headroom) / 0.8)
    kw.setdefault("monitor", Monitor())
    for key, value in ISOLATED.items():
        kw.setdefault(key, value)
    return MemoryGuard(limit=limit, warning=0.8, critical=0.95, **kw)  # type: ignore[arg-type]


def wait_for(cond: object, timeout: float = 30.0) -> bool:
    """Poll ``cond()`` until true or ``timeout``; return the last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return True
        time.sleep(0.005)
    return bool(cond())  # type: ignore[operator]


@pytest.fixture
def hog() -> Iterator[list[mmap.mmap]]:
    """A list to hold resident memory in; emptied after the test."""
    held: list[mmap.mmap] = []
    yield held
    held.clear()


def test_levels_rise_and_fall_with_hysteresis(hog: list[mmap.mmap]) -> None:
    """NORMAL -> ELEVATED -> CRITICAL, and down again only past the hysteresis band."""
    guard = guard_near(40 * MiB, hysteresis=0.05)
    events: list[LevelChange] = []
    guard.on_change(events.append)
    try:
        lim = guard.limit
        base = rss_now()
        assert guard.check() == Level.NORMAL
        hog.append(touched(int(0.8 * lim) - base + 8 * MiB))  # 8 MiB above warning
        assert guard.check() == Level.ELEVATED
        hog.append(touched(int(0.15 * lim) + 2 * MiB))  # past critical
        assert guard.check() == Level.CRITICAL
        # Drop back to just under critical but inside the band: still CRITICAL.
        hog.pop()
        hog.append(touched(int(0.15 * lim) - int(0.02 * lim)))
        assert guard.check() == Level.CRITICAL
        hog.pop()
        assert guard.check() == Level.ELEVATED
        # Just under warning but inside the band: still ELEVATED.
        hog.clear()
        hog.append(touched(int(0.8 * lim) - base - int(0.02 * lim)))
        assert guard.check() == Level.ELEVATED
        hog.clear()
        assert guard.check() == Level.NORMAL
    finally:
        guard.close()
    assert [(e.old, e.new) for e in events] == [
        (Level.NORMAL, Level.ELEVATED),
        (Level.ELEVATED, Level.CRITICAL),
        (Level.CRITICAL, Level.ELEVATED),
        (Level.ELEVATED, Level.NORMAL),
    ]
    assert events[1].fraction >= 0.95 and events[1].limit == guard.limit
    assert guard.pressure_events == 2


def test_background_sampler_notices_growth(hog: list[mmap.mmap]) -> None:
    """With start(), nobody calls check(): the sampler thread alone sees ELEVATED."""
    guard = guard_near(30 * MiB, interval=0.005)
    seen = threading.Event()
    guard.on_change(lambda e: seen.set() if e.new >= Level.ELEVATED else None)
    with guard:
        assert guard.running
        hog.append(touched(40 * MiB))
        assert seen.wait(30), "sampler thread never reported ELEVATED"
        samples = guard.samples
        assert wait_for(lambda: guard.samples > samples + 3)
    assert not guard.running


def test_admit_samples_inline_when_stale(hog: list[mmap.mmap]) -> None:
    """Without a sampler thread, admit() re-samples once the last reading is stale."""
    guard = guard_near(30 * MiB, stale_after=0.001)
    try:
        guard.admit()
        first = guard.samples
        hog.append(touched(40 * MiB))
        time.sleep(0.005)
        guard.admit()
        assert guard.samples == first + 1
        assert guard.level == Level.ELEVATED
        fresh = MemoryGuard(stale_after=60.0, monitor=Monitor())
        fresh.check()
        n = fresh.samples
        for _ in range(100):
            fresh.admit()
        assert fresh.samples == n  # fresh reading: admit() did not touch /proc
        fresh.close()
    finally:
        guard.close()


def test_sampler_keeps_sampling_behind_io_heavy_main_thread(tmp_path: Path) -> None:
    """The sampler thread keeps taking samples while this thread hammers the disk.

    The I/O loop never yields on purpose and never reads the guard, so every sample counted
    was taken by the thread; the loop stops at 5 samples (a bound of 60 s, not a rate).
    """
    guard = MemoryGuard(interval=0.005, monitor=Monitor())
    path = tmp_path / "io.bin"
    block = b"x" * 4096
    with guard:
        start = guard.samples
        deadline = time.monotonic() + 60
        with open(path, "wb", buffering=0) as f:
            while guard.samples - start < 5 and time.monotonic() < deadline:
                f.write(block)
                f.seek(0)
        taken = guard.samples - start
    assert taken >= 5, f"sampler took only {taken} samples in 60 s of I/O"


def test_safety_raise_mode(hog: list[mmap.mmap]) -> None:
    """At CRITICAL in safety="raise", admit() raises MemoryPressureError naming the numbers."""
    guard = guard_near(20 * MiB, safety="raise", stale_after=0.0)
    try:
        guard.admit()
        hog.append(touched(int(guard.limit * 0.95) - rss_now() + 8 * MiB))
        with pytest.raises(MemoryPressureError, match=r"CRITICAL: rss \d+ of limit \d+"):
            guard.admit()
        assert isinstance(MemoryPressureError("x"), MemoryError)
        hog.clear()
        guard.admit()
    finally:
        guard.close()


def test_admit_with_requested_bytes(hog: list[mmap.mmap]) -> None:
    """admit(nbytes) refuses an allocation that would cross critical."""
    guard = guard_near(40 * MiB, safety="raise")
    try:
        guard.check()
        guard.admit(1 * MiB)
        with pytest.raises(MemoryPressureError, match="requested"):
            guard.admit(guard.limit)
    finally:
        guard.close()


def test_safety_wait_times_out_then_succeeds(hog: list[mmap.mmap]) -> None:
    """safety="wait" waits up to wait_timeout; memory freed meanwhile lets it through."""
    guard = guard_near(20 * MiB, safety="wait", wait_timeout=0.2, stale_after=0.0)
    try:
        hog.append(touched(int(guard.limit * 0.95) - rss_now() + 8 * MiB))
        with pytest.raises(MemoryPressureError):
            guard.admit()
        timer = threading.Timer(0.1, hog.clear)
        timer.start()
        guard._wait_timeout = 30.0
        guard.admit()  # returns once the timer freed the memory
        timer.join()
        assert guard.level < Level.CRITICAL
    finally:
        guard.close()


async def test_admit_async_waits(hog: list[mmap.mmap]) -> None:
    """admit_async() waits on the event loop and passes once memory is freed."""
    guard = guard_near(20 * MiB, safety="wait", wait_timeout=30.0, stale_after=0.0)
    try:
        hog.append(touched(int(guard.limit * 0.95) - rss_now() + 8 * MiB))
        asyncio.get_running_loop().call_later(0.05, hog.clear)
        await guard.admit_async()
        assert guard.level < Level.CRITICAL
    finally:
        guard.close()


async def test_async_callback_runs_on_its_loop(hog: list[mmap.mmap]) -> None:
    """An async callback registered in a loop runs there when the sampler thread fires."""
    guard = guard_near(30 * MiB, interval=0.005)
    got: asyncio.Queue[LevelChange] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    ran_on: list[asyncio.AbstractEventLoop] = []

    async def on_change(event: LevelChange) -> None:
        ran_on.append(asyncio.get_running_loop())
        await got.put(event)

    guard.on_change(on_change)
    async with guard:
        hog.append(touched(40 * MiB))
        event = await asyncio.wait_for(got.get(), 30)
    assert event.new == Level.ELEVATED
    assert ran_on == [loop]


def test_async_callback_needs_a_loop() -> None:
    """Registering an async callback outside a loop without loop= is a ConfigError."""
    guard = MemoryGuard(monitor=Monitor())

    async def cb(event: LevelChange) -> None:
        return None

    with pytest.raises(ConfigError, match="needs a loop"):
        guard.on_change(cb)
    guard.close()


class Hoard:
    """A reliever that really holds memory and gives back what it is asked for."""

    def __init__(self, blocks: int, size: int) -> None:
        self.blocks = [touched(size) for _ in range(blocks)]
        self.size = size
        self.calls: list[float] = []

    def shrink(self, fraction: float) -> int:
        self.calls.append(fraction)
        n = int(len(self.blocks) * fraction)
        del self.blocks[:n]
        return n * self.size


def test_relievers_shrink_then_gc(hog: list[mmap.mmap]) -> None:
    """ELEVATED asks relievers for 25%, CRITICAL for 50%, then a gc pass runs."""
    guard = guard_near(40 * MiB, relief_cooldown=3600)
    hoard = Hoard(8, 4 * MiB)
    assert isinstance(hoard, Reliever)
    guard.register(hoard)
    collections: list[int] = []

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    try:
        guard.check()
        hog.append(touched(int(guard.limit * 0.8) - rss_now() + 6 * MiB))
        gc.callbacks.append(on_gc)
        assert guard.check() == Level.ELEVATED
        assert hoard.calls == [0.25]
        assert 2 in collections
        hog.append(touched(int(guard.limit * 0.15) + 4 * MiB))
        guard.check()
        assert hoard.calls == [0.25, 0.5]
        assert len(hoard.blocks) == 3
        assert guard.metric_values()["relieved"] == 5 * 4 * MiB
    finally:
        if on_gc in gc.callbacks:
            gc.callbacks.remove(on_gc)
        guard.close()


def test_reliever_held_weakly_and_failures_logged(
    hog: list[mmap.mmap], caplog: pytest.LogCaptureFixture
) -> None:
    """A collected reliever is skipped; a failing one is logged, not raised."""
    guard = guard_near(30 * MiB)

    class Broken:
        def shrink(self, fraction: float) -> int:
            raise RuntimeError("boom")

    gone = Hoard(1, 1024)
    guard.register(gone)
    broken = Broken()
    guard.register(broken)
    del gone
    gc.collect()
    try:
        with caplog.at_level(logging.ERROR, logger="perflayer.memory"):
            hog.append(touched(40 * MiB))
            assert guard.check() == Level.ELEVATED
        assert "reliever" in caplog.text and "boom" in caplog.text
        assert len(guard._relievers) == 1
        with pytest.raises(ConfigError, match="shrink"):
            guard.register(object())  # type: ignore[arg-type]
    finally:
        guard.close()


def test_callback_errors_do_not_stop_the_guard(
    hog: list[mmap.mmap], caplog: pytest.LogCaptureFixture
) -> None:
    """A raising callback is logged; later callbacks still run."""
    guard = guard_near(30 * MiB)
    seen: list[Level] = []

    def bad(event: LevelChange) -> None:
        raise ValueError("bad callback")

    guard.on_change(bad)
    guard.on_change(lambda e: seen.append(e.new))
    try:
        with caplog.at_level(logging.ERROR, logger="perflayer.memory"):
            hog.append(touched(40 * MiB))
            guard.check()
        assert seen == [Level.ELEVATED]
        assert "bad callback" in caplog.text
        guard.remove_callback(bad)
        assert len(guard._callbacks) == 1
    finally:
        guard.close()


GROWER = """
import sys
held = []
print("ready", flush=True)
for line in sys.stdin:  # one 4 MiB step per line, acknowledged once resident
    held.append(b"\\x01" * (4 << 20))
    print(len(held), flush=True)
"""


def test_guard_watches_a_child_process_and_stops_it() -> None:
    """pid= watches another process; the callback kills it before it reaches the limit.

    The child grows one 4 MiB step at a time, and the next step is only asked for once the
    sampler thread has taken two samples after the last one, so the guard sees every step:
    the kill lands at the first step past the warning line, under the limit, however slow
    the machine is.
    """
    child = subprocess.Popen(
        [sys.executable, "-c", GROWER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        assert child.stdout.readline() == "ready\n"
        start = RssReader(child.pid)()
        guard = MemoryGuard(
            limit=start + 100 * MiB,
            pid=child.pid,
            interval=0.005,
            monitor=Monitor(),
            **ISOLATED,  # type: ignore[arg-type]
        )
        stopped = threading.Event()
        seen: list[int] = []

        def stop(event: LevelChange) -> None:
            if event.new >= Level.ELEVATED:
                seen.append(event.rss)
                child.kill()
                stopped.set()

        guard.on_change(stop)
        with guard:
            for step in range(1, 64):  # 256 MiB at most, far past the limit
                if stopped.is_set():
                    break
                try:
                    child.stdin.write("grow\n")
                    child.stdin.flush()
                except BrokenPipeError:
                    break  # killed meanwhile
                if child.stdout.readline() != f"{step}\n":
                    break  # killed meanwhile
                taken = guard.samples
                assert wait_for(lambda t=taken: guard.samples >= t + 2 or stopped.is_set(), 60)
            assert stopped.wait(60), "guard never saw the child grow"
        assert child.wait(60) != 0
        assert seen and seen[0] < guard.limit
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        child.stdin.close()
        child.stdout.close()


def test_psi_raises_the_level(tmp_path: Path) -> None:
    """PSI "some avg10" above psi_critical makes the guard CRITICAL even at low RSS."""
    proc = tmp_path / "proc"
    (proc / "pressure").mkdir(parents=True)
    (proc / "self").mkdir()
    (proc / "self" / "cgroup").write_text("")
    psi = proc / "pressure" / "memory"
    psi.write_text(
        "some avg10=55.00 avg60=1.00 avg300=0.00 total=1\n"
        "full avg10=1.00 avg60=0.00 avg300=0.00 total=1\n"
    )
    guard = MemoryGuard(proc_root=str(proc), monitor=Monitor(), psi_critical=40.0)
    try:
        assert guard.check() == Level.CRITICAL
        psi.write_text("some avg10=12.00 avg60=1.00 avg300=0.00 total=1\n")
        assert guard.check() == Level.ELEVATED
        psi.write_text("some avg10=0.00 avg60=0.00 avg300=0.00 total=1\n")
        assert guard.check() == Level.NORMAL
    finally:
        guard.close()
    no_psi = MemoryGuard(proc_root=str(tmp_path / "empty"), monitor=Monitor())
    assert no_psi._psi is None
    no_psi.close()


def sample(text: str, series: str) -> float:
    """Return the value of ``series`` in a Prometheus exposition."""
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{series} not in exposition")


def test_metrics_land_in_the_monitor(hog: list[mmap.mmap]) -> None:
    """rss, limit, level and pressure events are scraped from the guard by its monitor."""
    mon = Monitor()
    guard = guard_near(30 * MiB, monitor=mon, name="web")
    try:
        hog.append(touched(40 * MiB))
        guard.check()
        text = mon.exposition()
    finally:
        guard.close()
    assert sample(text, 'perflayer_memory_limit_bytes{guard="web"}') == guard.limit
    assert sample(text, 'perflayer_memory_level{guard="web"}') == 1.0
    assert sample(text, 'perflayer_memory_pressure_events_total{guard="web"}') == 1.0
    assert sample(text, 'perflayer_memory_rss_bytes{guard="web"}') == guard.rss
    assert "perflayer_pool_" not in text
    second = MemoryGuard(monitor=mon, name="web")
    assert 'guard="web-2"' in mon.exposition()
    second.close()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"warning": 0.9, "critical": 0.8}, "warning"),
        ({"warning": 1.5}, "1.5"),
        ({"interval": 0}, "interval"),
        ({"safety": "panic"}, "panic"),
        ({"limit": -1}, "-1"),
        ({"limit": "1G"}, "1G"),
        ({"hysteresis": 0.9}, "0.9"),
    ],
)
def test_misuse_is_a_config_error(kwargs: dict[str, object], match: str) -> None:
    """Bad settings raise ConfigError (a ValueError) naming the bad value."""
    with pytest.raises(ConfigError, match=match):
        MemoryGuard(**kwargs)  # type: ignore[arg-type]
    assert issubclass(ConfigError, ValueError)


def test_refresh_limit_and_repr() -> None:
    """refresh_limit() re-reads the limit; repr shows level, rss and limit."""
    guard = MemoryGuard(limit=123 * MiB, monitor=Monitor())
    assert guard.refresh_limit().limit == 123 * MiB
    assert "limit=128974848" in repr(guard) and "user limit" in repr(guard)
    guard.close()
