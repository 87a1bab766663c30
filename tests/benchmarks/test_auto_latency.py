"""benchmarks.auto_latency's driven rows start where their names say (no timing here)."""

from __future__ import annotations

import pytest
from benchmarks.auto_latency import driven


@pytest.mark.parametrize("engine", ["lirs", "arc", "tinylfu"])
def test_a_driven_default_is_on_its_engine_after_a_switch(engine: str) -> None:
    """driven(c, e) returns a default cache whose engine is e, reached by a switch."""
    cache = driven(500, engine)
    policy = cache._policy
    assert policy.engine == engine and policy.switches >= 1
    if engine == "tinylfu":  # back on W-TinyLFU after adopting another engine
        assert {name for _t, name in policy.history} >= {"lirs", "tinylfu"}
    assert cache.dbsize() == 500
