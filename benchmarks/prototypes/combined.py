"""Research prototype: ghost-assisted admission (variant C) and the mm=5 climber together.

Question (docs/research-hitratio.md, "Session 6: ghost admission and the min/max restart
together"): the two prototypes measured in Session 6 change different parts of W-TinyLFU, the
admission test (``benchmarks.prototypes.ghost_admission.GhostPolicy``, its defaults are variant C)
and the window climber (``benchmarks.prototypes.climber3.C3Policy`` with ``mm=5``); do their gains
add up?

``GhostC3Policy`` is ``C3Policy`` carrying ``GhostPolicy``'s methods unchanged (the same code
objects, their ``super()`` cell rebound to this class): both prototypes declare ``__slots__`` on
``TinyLFUPolicy``, so plain multiple inheritance is a layout conflict. The method resolution is
then GhostC3Policy (the ghost's ``_evict``, ``_drain``, ``_admit``, ...) -> C3Policy -> H3Policy ->
TinyLFUPolicy. The one method both override is ``add`` (the ghost's is a full copy of the base's
with its access clock; H3's is a sampling test in front of the base's): ``GhostC3Policy.add`` runs
H3's test, then the ghost's ``add``.

Checks (the sweep, 4 points): with ``src=0`` (ghost off) it replays exactly as
``climber3.c3`` with the same climber options, with ``mm=0`` exactly as ``ghost_admission.make``.

The sweep takes it as ``py:benchmarks.prototypes.combined.make[,K=V...]``: K a key of
``ghost_admission.CFG`` (the ghost) or of ``shadow_climber.CFG`` / ``climber3.CFG3`` (the
climber).
"""

from __future__ import annotations

import types
from collections.abc import Hashable

from benchmarks.prototypes import climber3, ghost_admission
from benchmarks.prototypes.climber3 import C3Policy
from benchmarks.prototypes.ghost_admission import GhostPolicy
from benchmarks.prototypes.shadow_climber import CFG, H3Policy, set_options


class GhostC3Policy(C3Policy):
    """C3Policy (the mm climber) whose admission test is GhostPolicy's (see the module docstring)."""

    def __init__(
        self, max_entries: int | None, max_weight: int | None, cfg: dict[str, float] | None = None
    ) -> None:
        # GhostPolicy.__init__ (rebound below) sets the ghost up, then calls C3Policy.__init__
        _GHOST_INIT(self, max_entries, max_weight, cfg)

    def add(self, key: Hashable, weight: int) -> list[Hashable]:
        """Insert ``key``: H3's sampling test first (as H3Policy.add), then the ghost's add."""
        self._observe_miss(key)
        return _GHOST_ADD(self, key, weight)


def _rebind(fn: types.FunctionType, cls: type) -> types.FunctionType:
    """Return ``fn`` (same code) with its zero-argument ``super()`` cell pointing at ``cls``."""
    if "__class__" not in fn.__code__.co_freevars:
        return fn
    cells = tuple(
        types.CellType(cls) if name == "__class__" else cell
        for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=True)
    )
    return types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, cells)


_GHOST_INIT = _rebind(GhostPolicy.__dict__["__init__"], GhostC3Policy)
_GHOST_ADD = _rebind(GhostPolicy.__dict__["add"], GhostC3Policy)
for _name in ("_dm_init", "_shadow_reset", "_remember", "_admit", "_drain", "_evict"):
    setattr(GhostC3Policy, _name, _rebind(GhostPolicy.__dict__[_name], GhostC3Policy))
# the ghost's methods above replace every override of H3Policy/C3Policy but these
assert set(vars(H3Policy)) & {"_dm_init", "_remember", "_admit", "_evict", "_shadow_reset"} == set()


def make(c: int, **over: float) -> GhostC3Policy:
    """Build a GhostC3Policy of ``c`` entries; ``over`` sets ghost, CFG and CFG3 options."""
    gcfg = dict(ghost_admission.CFG)
    set_options("combined", over, gcfg, climber3.CFG3, CFG)
    return GhostC3Policy(c, None, gcfg)
