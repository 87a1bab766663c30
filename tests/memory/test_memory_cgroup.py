"""Effective limit from fake cgroup v1/v2 trees, fake /proc, physical RAM and the user's limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from perflayer.memory import MemoryGuard, effective_limit, physical_memory

GiB = 1 << 30
MiB = 1 << 20


def make_proc(tmp: Path, cgroup: str, mem_total_kib: int = 16 * 1024 * 1024) -> Path:
    """Build a fake /proc with self/cgroup and meminfo."""
    proc = tmp / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "self" / "cgroup").write_text(cgroup)
    (proc / "meminfo").write_text(f"MemTotal:       {mem_total_kib} kB\nMemFree: 1 kB\n")
    return proc


def write(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, creating parents."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_v2_smallest_memory_max_up_the_hierarchy(tmp_path: Path) -> None:
    """A parent's memory.max below the leaf's wins: cgroup v2 limits nest."""
    proc = make_proc(tmp_path, "0::/kubepods/pod1/ctr\n")
    cg = tmp_path / "cg"
    write(cg / "cgroup.controllers", "cpu memory\n")
    write(cg / "kubepods" / "memory.max", "max\n")
    write(cg / "kubepods" / "pod1" / "memory.max", str(3 * GiB))
    write(cg / "kubepods" / "pod1" / "ctr" / "memory.max", str(5 * GiB))
    info = effective_limit(proc_root=proc, cgroup_root=cg)
    assert info.limit == 3 * GiB
    assert info.source.startswith("cgroup v2") and "pod1/memory.max" in info.source
    assert info.candidates["physical RAM"] == 16 * GiB


def test_v2_max_means_unlimited(tmp_path: Path) -> None:
    """memory.max = "max" everywhere leaves physical RAM as the limit."""
    proc = make_proc(tmp_path, "0::/a\n", mem_total_kib=2 * 1024 * 1024)
    cg = tmp_path / "cg"
    write(cg / "cgroup.controllers", "memory\n")
    write(cg / "a" / "memory.max", "max\n")
    info = effective_limit(proc_root=proc, cgroup_root=cg)
    assert info.limit == 2 * GiB
    assert info.source == "physical RAM"


def test_v1_limit_in_bytes_up_the_hierarchy(tmp_path: Path) -> None:
    """cgroup v1: the smallest limit_in_bytes of the memory cgroup and its ancestors."""
    proc = make_proc(tmp_path, "5:cpu,cpuacct:/x\n4:memory:/docker/abc\n0::/\n")
    cg = tmp_path / "cg"
    write(cg / "memory" / "memory.limit_in_bytes", "9223372036854771712\n")
    write(cg / "memory" / "docker" / "memory.limit_in_bytes", str(700 * MiB))
    write(cg / "memory" / "docker" / "abc" / "memory.limit_in_bytes", "9223372036854771712\n")
    info = effective_limit(proc_root=proc, cgroup_root=cg)
    assert info.limit == 700 * MiB
    assert info.source.startswith("cgroup v1")


def test_v1_without_namespace_reads_the_mount_root(tmp_path: Path) -> None:
    """A host path that does not exist inside the container falls back to the mount root."""
    proc = make_proc(tmp_path, "4:memory:/host/slice/container\n")
    cg = tmp_path / "cg"
    write(cg / "memory" / "memory.limit_in_bytes", str(512 * MiB))
    info = effective_limit(proc_root=proc, cgroup_root=cg)
    assert info.limit == 512 * MiB


def test_v1_combined_controller_directory(tmp_path: Path) -> None:
    """A v1 hierarchy mounted as "memory,foo" is found by its controller list."""
    proc = make_proc(tmp_path, "4:memory:/g\n")
    cg = tmp_path / "cg"
    write(cg / "foo,memory" / "g" / "memory.limit_in_bytes", str(300 * MiB))
    assert effective_limit(proc_root=proc, cgroup_root=cg).limit == 300 * MiB


def test_hybrid_v2_under_unified(tmp_path: Path) -> None:
    """Hybrid hosts mount v2 at /sys/fs/cgroup/unified; both trees count."""
    proc = make_proc(tmp_path, "4:memory:/m\n0::/u\n")
    cg = tmp_path / "cg"
    write(cg / "memory" / "m" / "memory.limit_in_bytes", str(900 * MiB))
    write(cg / "unified" / "cgroup.controllers", "memory\n")
    write(cg / "unified" / "u" / "memory.max", str(800 * MiB))
    info = effective_limit(proc_root=proc, cgroup_root=cg)
    assert info.limit == 800 * MiB
    assert any(k.startswith("cgroup v1") for k in info.candidates)


def test_user_limit_wins_when_smaller(tmp_path: Path) -> None:
    """The user's limit is one candidate among the others; the smallest wins."""
    proc = make_proc(tmp_path, "0::/a\n")
    cg = tmp_path / "cg"
    write(cg / "cgroup.controllers", "memory\n")
    write(cg / "a" / "memory.max", str(GiB))
    assert effective_limit(100 * MiB, proc_root=proc, cgroup_root=cg).source == "user limit"
    assert effective_limit(2 * GiB, proc_root=proc, cgroup_root=cg).limit == GiB


def test_garbage_files_are_skipped(tmp_path: Path) -> None:
    """Unparseable limit files and a broken cgroup file degrade to the next candidate."""
    proc = make_proc(tmp_path, "garbage line\n0::/a\n", mem_total_kib=1024 * 1024)
    cg = tmp_path / "cg"
    write(cg / "cgroup.controllers", "memory\n")
    write(cg / "a" / "memory.max", "not a number\n")
    info = effective_limit(proc_root=proc, cgroup_root=cg)
    assert info.limit == GiB and info.source == "physical RAM"


def test_physical_memory_from_meminfo_and_fallback(tmp_path: Path) -> None:
    """MemTotal is read from meminfo; without it sysconf gives the real machine's RAM."""
    proc = make_proc(tmp_path, "")
    assert physical_memory(proc) == 16 * GiB
    real = physical_memory(tmp_path / "nowhere")
    assert real is not None and real > 256 * MiB


def test_guard_uses_fake_tree_and_psutil_fallback(tmp_path: Path) -> None:
    """A guard on a fake /proc has the fake limit and reads RSS through psutil instead."""
    proc = make_proc(tmp_path, "0::/a\n")
    cg = tmp_path / "cg"
    write(cg / "cgroup.controllers", "memory\n")
    write(cg / "a" / "memory.max", str(64 * GiB))
    write(cg / "a" / "memory.max", str(60 * GiB))
    guard = MemoryGuard(proc_root=str(proc), cgroup_root=str(cg), register_metrics=False)
    try:
        assert guard.limit == 16 * GiB  # RAM in the fake meminfo is smaller than 60 GiB
        assert guard._rss_reader.source == "psutil"
        guard.check()
        assert guard.rss > 1 * MiB
    finally:
        guard.close()


def test_real_machine_limit_is_sane() -> None:
    """On this machine the effective limit is positive and no larger than physical RAM."""
    info = effective_limit()
    ram = physical_memory()
    assert ram is not None
    assert 0 < info.limit <= ram


@pytest.mark.parametrize("value", ["0", "-5", "1152921504606846976"])
def test_nonsense_limits_are_unlimited(tmp_path: Path, value: str) -> None:
    """Zero, negative and >= 1 EiB limits mean "no limit"."""
    proc = make_proc(tmp_path, "0::/a\n", mem_total_kib=1024 * 1024)
    cg = tmp_path / "cg"
    write(cg / "cgroup.controllers", "memory\n")
    write(cg / "a" / "memory.max", value)
    assert effective_limit(proc_root=proc, cgroup_root=cg).source == "physical RAM"
