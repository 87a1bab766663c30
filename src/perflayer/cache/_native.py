"""Whether new caches use perflayer's C accelerators (compiled on install by hatch_build.py).

Three are built: ``_tinylfu_c`` (the W-TinyLFU policy, ``_policy.tinylfu_class``),
``_fastpath_c`` (``Cache.get`` and the plain ``Cache.set``, bound in ``Cache.__init__``) and
``_engines_c`` (the adaptive policy's LIRS and ARC engines, ``_policy_adaptive._engine_class``).
Each answers exactly as the pure-Python code it replaces (tests/cache/test_tinylfu_c.py,
test_fastpath_c.py, test_engines_c.py) and is used where it was built, unless
``PERFLAYER_PURE_PYTHON`` is set to anything but ``0`` in the environment when the cache is
built. The cache entry's class (the C ``_fastpath_c.Entry``, which the cyclic GC leaves untracked
while it can be in no cycle, or the Python ``_core._PyEntry``) is chosen once, when
``perflayer.cache._core`` is imported.
"""

from __future__ import annotations

import os

__all__ = ["native_enabled"]


def native_enabled() -> bool:
    """Return False when ``PERFLAYER_PURE_PYTHON`` asks for the pure-Python code."""
    return os.environ.get("PERFLAYER_PURE_PYTHON", "") in ("", "0")
