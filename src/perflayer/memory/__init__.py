"""perflayer.memory: keep a process under its real limit, pool objects, stream within a budget.

- ``MemoryGuard``: RSS against the effective limit (cgroup v2/v1, RAM, user), levels with
  hysteresis, callbacks, relievers (caches shrink on request), ``admit()``/``check()`` gates.
- ``ObjectPool`` / ``AsyncObjectPool``: lock-free reuse with leak detection.
- ``stream_file`` / ``process_in_chunks``: lazy, byte-bounded, never a silent partial stop.
- ``gc_tuned()`` and ``leak_check()``: explicit, reversible gc settings; tracemalloc growth by line.
"""

from __future__ import annotations

__all__ = [
    "AsyncLease",
    "AsyncObjectPool",
    "ChunkRun",
    "FileStream",
    "GcState",
    "LeakReport",
    "Lease",
    "Level",
    "LevelChange",
    "LimitInfo",
    "LineGrowth",
    "MemoryGuard",
    "ObjectPool",
    "PoolStats",
    "Reliever",
    "effective_limit",
    "gc_tuned",
    "leak_check",
    "physical_memory",
    "process_in_chunks",
    "stream_file",
]

from perflayer.memory._cgroup import LimitInfo, effective_limit, physical_memory
from perflayer.memory._gc import GcState, gc_tuned
from perflayer.memory._guard import Level, LevelChange, MemoryGuard, Reliever
from perflayer.memory._leaks import LeakReport, LineGrowth, leak_check
from perflayer.memory._pool import AsyncLease, AsyncObjectPool, Lease, ObjectPool, PoolStats
from perflayer.memory._stream import ChunkRun, FileStream, process_in_chunks, stream_file
