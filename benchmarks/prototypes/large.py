"""Research prototype: the sizes above 2,048 entries of the size split (docs/research-climber.md, Session 9).

``make(c, **opts)`` (the sweep's ``py:benchmarks.prototypes.large.make,K=V,...``):

- ``c <= low`` (2,048): today's default ``TinyLFUPolicy(c, None)``, untouched (the lower half of
  the split is another prototype's; a sweep of this one counts only the points above ``low``);
- ``low < c <= full`` (8,192): ``LargePolicy``, adaptive2's selection over {TinyLFU, LIRS, ARC}
  with full shadows and adoption (candidate F: ``samp=0,escale=0.5,keeph=1,long=0.984``) whose
  TinyLFU simulation keeps a per-entry read buffer like the default's (``srb=0``: the 1,024-read
  buffer of F's simulation drops reads at these sizes, and an adopted copy inherits the loss:
  syn-scan-mix@3197 -9.66 with it, -4.98 without, the default -5.36), and whose TinyLFU engine
  and simulation are ``engine``: 0 the default, 1 climber6's ``C6Policy`` (A+E with the ``eff``
  guard);
- ``c > full``: the TinyLFU engine alone (``engine`` as above, no simulations).

Result (Session 9): F' and G close cache2k-web07@5121 but lose held-out syn-phases / syn-tenants /
syn-scan-mix points to their switching (G: 19 of 21 points above 2,048 entries on the 60, 15 of 18
on offset 100 against the default's 18 and 16). ``cost()`` (``python -m benchmarks.prototypes.large``)
times them against the default.

Options: ``low``, ``engine`` (0/1), every ``adaptive2.CFG`` key (F's values are the defaults here),
and with ``engine=1`` the climber5/climber6 keys (``eff`` 0.03 by default; ``epoch``).
"""

from __future__ import annotations

from typing import Any

from benchmarks.hitratio import PolicySim
from benchmarks.prototypes import climber6
from benchmarks.prototypes.adaptive2 import CFG, Adaptive2
from perflayer.cache._policy import TinyLFUPolicy, read_buffer_size

# candidate F with a per-entry read buffer in its TinyLFU simulation
F_OPTS: dict[str, float] = {
    "samp": 0,
    "full": 8_192,
    "escale": 0.5,
    "keeph": 1,
    "long": 0.984,
    "srb": 0,
}


class LargePolicy(Adaptive2):
    """Adaptive2 whose TinyLFU engine and simulation are built by ``tiny`` (a policy factory)."""

    def __init__(self, max_entries: int, tiny: Any, **over: float) -> None:
        self._tiny_factory = tiny  # read by _make_tiny and _setup_shadows (called by __init__)
        super().__init__(max_entries, None, **over)

    def _make_tiny(self, max_entries: int | None, max_weight: int | None) -> TinyLFUPolicy:
        assert max_entries is not None and max_weight is None
        return self._wire(self._tiny_factory(max_entries, read_buffer_size(max_entries)))

    def _setup_shadows(self) -> None:
        super()._setup_shadows()
        if self._objs:
            mini = self._objs[0].p.max_entries
            assert mini is not None
            srb = int(self.cfg["srb"]) or read_buffer_size(mini)
            self._objs[0].p = self._tiny_factory(mini, srb)


def make(c: int, low: int = 2_048, engine: int = 0, **over: float) -> Any:
    """Build the simulator of a ``c``-entry cache (see the module docstring)."""
    if c <= low:
        return PolicySim(TinyLFUPolicy(c, None), c)
    opts = dict(F_OPTS)
    c6: dict[str, float] = {"eff": 0.03}
    for k, v in over.items():
        if k in CFG:
            opts[k] = v
        else:
            c6[k] = v
    if engine:
        climber6.make(c, **c6)  # sets climber5/climber6's option tables and the epoch
        eff = climber6.CFG6["eff"]

        def tiny(n: int, rb: int) -> TinyLFUPolicy:
            climber6.CFG6["eff"] = eff
            return climber6.C6Policy(n, None, read_buffer=rb)

    else:
        if c6.pop("epoch", 0):
            raise SystemExit("large: epoch needs engine=1 (use P_SHADOW_EPOCH)")
        c6.pop("eff")
        if c6:
            raise SystemExit(f"large: unknown options {sorted(c6)}")

        def tiny(n: int, rb: int) -> TinyLFUPolicy:
            return TinyLFUPolicy(n, None, read_buffer=rb)

    if c > opts["full"]:
        return PolicySim(tiny(c, read_buffer_size(c)), c)
    return PolicySim(LargePolicy(c, tiny, **opts), c)


__all__ = ["F_OPTS", "LargePolicy", "make"]


def cost(sizes: tuple[int, ...] = (4_096, 8_192), rounds: int = 3, n: int = 60_000) -> None:
    """Print the median ns per access of the default, C6, F' and G, and their ratios to the default.

    One process, the policies interleaved, ``rounds`` rounds over the first ``n`` accesses of
    syn-zipf-shift (cold start included): ``python -m benchmarks.prototypes.large``.
    """
    from collections.abc import Callable

    from benchmarks.prototypes.adaptive2 import time_per_access
    from benchmarks.traces import zipf_shift

    keys = zipf_shift()[:n]
    makers: dict[str, Callable[[int], Any]] = {
        "default": lambda c: PolicySim(TinyLFUPolicy(c, None), c),
        "C6": lambda c: PolicySim(climber6.make(c, eff=0.03), c),
        "F'": lambda c: make(c),
        "G": lambda c: make(c, engine=1),
    }
    time_per_access(makers, keys, sizes, rounds)


if __name__ == "__main__":
    cost()
