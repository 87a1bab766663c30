"""Cheap RSS and PSI readers: one ``pread`` on a file descriptor kept open for the process' life.

psutil's ``memory_info()`` costs ~30 us (it opens, reads and parses ``/proc/PID/stat*`` and builds
a named tuple); a ``pread`` of a kept-open ``/proc/self/statm`` costs ~3 us, so a guard can sample
every 10 ms and an inline check on a hot path is affordable. Elsewhere psutil is the fallback.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable

__all__ = ["PsiReader", "RssReader"]


def _close_fd(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


class RssReader:
    """Read the resident set size of a process in bytes (``/proc/PID/statm``, else psutil)."""

    __slots__ = ("__weakref__", "_fd", "_finalizer", "_page", "_pid", "read", "source")

    def __init__(self, pid: int | None = None, *, proc_root: str = "/proc") -> None:
        """Open ``/proc/PID/statm`` once; fall back to psutil when it cannot be opened."""
        self._pid = pid
        self._fd = -1
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        self._finalizer: weakref.finalize[[int], RssReader] | None = None
        self.read: Callable[[], int]
        who = "self" if pid is None else str(pid)
        try:
            self._fd = os.open(
                f"{proc_root}/{who}/statm", os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
            )
        except OSError:
            self.read = self._psutil_reader()
            self.source = "psutil"
        else:
            self._finalizer = weakref.finalize(self, _close_fd, self._fd)
            self.read = self._statm
            self.source = "statm"

    def _statm(self) -> int:
        # statm is "size resident shared text lib data dt" in pages; pread at offset 0 makes
        # the kernel regenerate the line, so no seek and no re-open per sample.
        return int(os.pread(self._fd, 128, 0).split(None, 2)[1]) * self._page

    def _psutil_reader(self) -> Callable[[], int]:
        try:
            import psutil
        except ImportError as exc:  # pragma: no cover - psutil is in the memory extra
            raise ImportError(
                "reading RSS without /proc needs psutil: pip install 'perflayer[memory]'"
            ) from exc
        proc = psutil.Process(self._pid)

        def read() -> int:
            return int(proc.memory_info().rss)

        return read

    def __call__(self) -> int:
        """Return the current RSS in bytes."""
        return self.read()

    def close(self) -> None:
        """Close the kept-open file descriptor (idempotent)."""
        if self._finalizer is not None:
            self._finalizer()
            self._finalizer = None
        self._fd = -1


class PsiReader:
    """Read memory pressure stall information (``some avg10``, ``full avg10``) if present."""

    __slots__ = ("__weakref__", "_fd", "_finalizer")

    def __init__(self, path: str = "/proc/pressure/memory") -> None:
        """Open the PSI file; ``available`` is False when the kernel has no PSI."""
        self._finalizer: weakref.finalize[[int], PsiReader] | None = None
        try:
            self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            os.pread(self._fd, 256, 0)
        except OSError:
            self._fd = -1
        else:
            self._finalizer = weakref.finalize(self, _close_fd, self._fd)

    @property
    def available(self) -> bool:
        """Whether PSI could be opened and read."""
        return self._fd >= 0

    def __call__(self) -> tuple[float, float] | None:
        """Return ``(some_avg10, full_avg10)`` in percent, or None when unreadable."""
        if self._fd < 0:
            return None
        try:
            data = os.pread(self._fd, 256, 0)
        except OSError:
            return None
        some = full = 0.0
        for line in data.splitlines():
            parts = line.split()
            if len(parts) < 2 or not parts[1].startswith(b"avg10="):
                continue
            try:
                value = float(parts[1][6:])
            except ValueError:
                continue
            if parts[0] == b"some":
                some = value
            elif parts[0] == b"full":
                full = value
        return some, full

    def close(self) -> None:
        """Close the file descriptor (idempotent)."""
        if self._finalizer is not None:
            self._finalizer()
            self._finalizer = None
        self._fd = -1
