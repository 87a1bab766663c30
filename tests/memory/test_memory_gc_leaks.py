"""gc_tuned() is explicit and reversible; leak_check() names the lines that grew."""

from __future__ import annotations

import gc
import subprocess
import sys
import tracemalloc

import pytest

from perflayer.errors import ConfigError
from perflayer.memory import gc_tuned, leak_check


def test_gc_tuned_sets_and_restores_thresholds() -> None:
    """Thresholds change inside the block and come back after it."""
    before = gc.get_threshold()
    with gc_tuned((12345, 11, 12)) as state:
        assert gc.get_threshold() == (12345, 11, 12) == state.threshold
    assert gc.get_threshold() == before


def test_gc_tuned_freeze_and_disable_are_undone_on_error() -> None:
    """freeze and disable are reverted even when the block raises."""
    frozen = gc.get_freeze_count()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), gc_tuned(None, freeze=True, disable=True) as state:
        assert state.frozen > frozen and not state.enabled and not gc.isenabled()
        raise RuntimeError("inside")
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen


def test_gc_tuned_rejects_bad_thresholds() -> None:
    """A malformed threshold is a ConfigError naming it; nothing changes."""
    before = gc.get_threshold()
    with pytest.raises(ConfigError, match=r"\(1, 2\)"), gc_tuned((1, 2)):  # type: ignore[arg-type]
        pass
    assert gc.get_threshold() == before


def test_nothing_changes_at_import_or_construction() -> None:
    """Importing perflayer.memory and building a guard and a pool leaves gc untouched."""
    code = (
        "import gc, sys\n"
        "before = (gc.get_threshold(), gc.isenabled(), gc.get_freeze_count())\n"
        "import perflayer.memory as m\n"
        "from perflayer.monitor import Monitor\n"
        "g = m.MemoryGuard(monitor=Monitor()); p = m.ObjectPool(list, monitor=Monitor())\n"
        "after = (gc.get_threshold(), gc.isenabled(), gc.get_freeze_count())\n"
        "import threading\n"
        "print(before == after, threading.active_count(), 'psutil' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "1", "False"]


def grow(store: list[bytes]) -> None:
    """Allocate 200 blocks of 10 KB on one line."""
    for _ in range(200):
        store.append(bytes(10_000))


def test_leak_check_names_the_growing_line() -> None:
    """The line that allocated the kept memory tops the report."""
    store: list[bytes] = []
    was_tracing = tracemalloc.is_tracing()
    with leak_check(top=5) as report:
        grow(store)
    assert report.finished
    top = report.top[0]
    assert top.filename == __file__
    assert top.lineno == grow.__code__.co_firstlineno + 3
    assert top.size_diff >= 2_000_000 and top.count_diff >= 200
    assert report.total_growth >= 2_000_000
    assert report.growth_in("test_memory_gc_leaks") >= 2_000_000
    assert "bytes in" in str(report)
    assert tracemalloc.is_tracing() == was_tracing


def test_leak_check_reports_nothing_for_freed_memory() -> None:
    """Memory allocated and freed inside the block does not show up as growth."""
    with leak_check() as report:
        tmp: list[bytes] = []
        grow(tmp)
        del tmp
    assert report.growth_in(__file__) < 100_000
