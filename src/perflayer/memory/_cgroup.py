"""The effective memory limit of a process: cgroup v2, cgroup v1, physical RAM, the user's limit.

A process in a container is killed at its cgroup limit, not at the machine's RAM, so a guard
that compares RSS with ``psutil.virtual_memory().total`` fires far too late. The limit here is
the smallest of:

- cgroup v2 ``memory.max`` of the process' cgroup and every ancestor (limits nest);
- cgroup v1 ``memory.limit_in_bytes`` of the process' memory cgroup and every ancestor;
- physical RAM (``MemTotal`` in ``/proc/meminfo``, else ``sysconf``, else psutil);
- the limit the user passed.

Both roots (``/proc`` and ``/sys/fs/cgroup``) are parameters so tests can build fake trees in
a temporary directory. Every file read degrades: a missing or unreadable file is skipped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["LimitInfo", "effective_limit", "physical_memory"]

# cgroup v1 reports "no limit" as a huge page-aligned number (PAGE_COUNTER_MAX * page size);
# anything at or above 2**60 bytes (1 EiB) is treated as unlimited.
_UNLIMITED = 1 << 60


@dataclass(frozen=True)
class LimitInfo:
    """The effective limit in bytes, where it came from, and every candidate that was read."""

    limit: int
    source: str
    candidates: dict[str, int] = field(default_factory=dict)


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii", errors="replace")
    except (OSError, ValueError):
        return None


def _parse_limit(text: str | None) -> int | None:
    if text is None:
        return None
    value = text.strip()
    if not value or value == "max":
        return None
    try:
        n = int(value)
    except ValueError:
        return None
    if n <= 0 or n >= _UNLIMITED:
        return None
    return n


def physical_memory(proc_root: str | os.PathLike[str] = "/proc") -> int | None:
    """Return the machine's physical RAM in bytes, or None if it cannot be read."""
    text = _read_text(Path(proc_root) / "meminfo")
    if text is not None:
        for line in text.splitlines():
            if line.startswith("MemTotal:"):
                parts = line.split()
                try:
                    kib = int(parts[1])
                except (IndexError, ValueError):
                    break
                return kib * 1024
    try:
        pages = os.sysconf("SC_PHYS_PAGES")
        size = os.sysconf("SC_PAGE_SIZE")
        if pages > 0 and size > 0:
            return int(pages * size)
    except (AttributeError, ValueError, OSError):
        pass
    try:
        import psutil
    except ImportError:
        return None
    return int(psutil.virtual_memory().total)


def _cgroup_lines(proc_root: Path, pid: str) -> list[tuple[str, str, str]]:
    text = _read_text(proc_root / pid / "cgroup")
    if text is None:
        return []
    out: list[tuple[str, str, str]] = []
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            out.append((parts[0], parts[1], parts[2]))
    return out


def _walk_up(mount: Path, cg_path: str, filename: str) -> list[tuple[str, int]]:
    """Read ``filename`` in the cgroup directory and every ancestor up to the mount."""
    rel = cg_path.strip("/")
    start = mount / rel if rel else mount
    if not start.is_dir():
        # Without a cgroup namespace the path names the host's hierarchy while the container
        # sees only its own sub-tree mounted at the root: read the mount root instead.
        start = mount
    found: list[tuple[str, int]] = []
    current = start
    while True:
        limit = _parse_limit(_read_text(current / filename))
        if limit is not None:
            found.append((str(current / filename), limit))
        if current == mount or mount not in current.parents:
            break
        current = current.parent
    return found


def _v1_memory_mount(cgroup_root: Path) -> Path | None:
    direct = cgroup_root / "memory"
    if direct.is_dir():
        return direct
    try:
        entries = list(cgroup_root.iterdir())
    except OSError:
        return None
    for entry in entries:
        if entry.is_dir() and "memory" in entry.name.split(","):
            return entry
    return None


def _v2_mount(cgroup_root: Path) -> Path | None:
    if (cgroup_root / "cgroup.controllers").is_file():
        return cgroup_root
    unified = cgroup_root / "unified"
    if (unified / "cgroup.controllers").is_file():
        return unified
    return None


def effective_limit(
    user_limit: int | None = None,
    *,
    pid: int | None = None,
    proc_root: str | os.PathLike[str] = "/proc",
    cgroup_root: str | os.PathLike[str] = "/sys/fs/cgroup",
) -> LimitInfo:
    """Return the smallest of the cgroup v2/v1 limits, physical RAM and ``user_limit``."""
    proc = Path(proc_root)
    cgroot = Path(cgroup_root)
    who = "self" if pid is None else str(pid)
    candidates: dict[str, int] = {}
    for hier, controllers, cg_path in _cgroup_lines(proc, who):
        if hier == "0" and controllers == "":
            mount = _v2_mount(cgroot)
            if mount is not None:
                for where, limit in _walk_up(mount, cg_path, "memory.max"):
                    candidates[f"cgroup v2 {where}"] = limit
        elif "memory" in controllers.split(","):
            mount = _v1_memory_mount(cgroot)
            if mount is not None:
                for where, limit in _walk_up(mount, cg_path, "memory.limit_in_bytes"):
                    candidates[f"cgroup v1 {where}"] = limit
    ram = physical_memory(proc)
    if ram is not None:
        candidates["physical RAM"] = ram
    if user_limit is not None:
        candidates["user limit"] = user_limit
    if not candidates:
        # Nothing readable at all (an exotic platform): fall back to a conservative 1 GiB so
        # the guard still works instead of failing at construction.
        candidates["fallback"] = 1 << 30
    source = min(candidates, key=lambda k: candidates[k])
    return LimitInfo(limit=candidates[source], source=source, candidates=candidates)
