"""Peer eviction policies for the hit-ratio benchmark, each written from its paper.

Every simulator takes a capacity in entries and exposes ``access(key) -> bool`` (True on a hit),
replaying a trace as a cache-aside memo: a miss inserts the key.
"""

from __future__ import annotations

from benchmarks.policies.arc import ARC
from benchmarks.policies.belady import belady_hits
from benchmarks.policies.lirs import LIRS
from benchmarks.policies.s3fifo import S3FIFO

__all__ = ["ARC", "LIRS", "S3FIFO", "belady_hits"]
