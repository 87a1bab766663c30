"""Hatchling build hook: compile perflayer's optional C accelerators.

Why a C part at all: ``benchmarks/cache_latency.py`` showed that the pure-Python W-TinyLFU policy
alone costs 1.65x a whole ``cachetools.LRUCache`` set (callgrind), already inlined to the bone, so
the issue's set bar (<= 1.5x, with admission on) is out of reach in bytecode. The C policy makes the
same decisions (tests/cache/test_tinylfu_c.py replays the pinned digests and a differential test).

Every extension is optional: without a compiler the build warns and perflayer runs its pure-Python
policy (``perflayer.cache._policy.TinyLFUPolicy``). ``PERFLAYER_REQUIRE_EXT=1`` turns a failed
compile into a build error (``make test`` sets it, so CI always tests the C part).
A wheel gets the compiled module and a platform tag; an editable install (``pip install -e``)
builds it in place under ``src/``, where the editable package is imported from.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

# (module name, C source relative to the project root)
EXTENSIONS = [
    ("perflayer.cache._tinylfu_c", "src/perflayer/cache/_tinylfu_c.c"),
    ("perflayer.cache._fastpath_c", "src/perflayer/cache/_fastpath_c.c"),
    ("perflayer.cache._engines_c", "src/perflayer/cache/_engines_c.c"),
    ("perflayer.cache._auto_c", "src/perflayer/cache/_auto_c.c"),
]


class CustomBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    """Compile each C extension with setuptools' build_ext (portable compiler flags)."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        required = os.environ.get("PERFLAYER_REQUIRE_EXT", "") not in ("", "0")
        try:
            built = self._compile()
        except Exception as exc:  # any compiler failure falls back to pure Python
            if required:
                raise RuntimeError(f"perflayer: building the C extensions failed: {exc}") from exc
            print(
                f"perflayer: C extensions not built ({exc}); using the pure-Python policy",
                file=sys.stderr,
            )
            return
        root = Path(self.root)
        for module, path in built:
            rel = Path(*module.split(".")[:-1]) / path.name
            if version == "editable":
                dest = root / "src" / rel
                # stale builds for other interpreters are left alone; this one is replaced by a
                # rename, never rewritten in place: a process that has the old one mapped (a test
                # run during a rebuild) keeps its file instead of crashing on the new bytes
                tmp = dest.with_name(dest.name + ".tmp")
                shutil.copyfile(path, tmp)
                os.replace(tmp, dest)
            else:
                build_data["force_include"][str(path)] = str(rel)
        if version != "editable":
            build_data["pure_python"] = False
            build_data["infer_tag"] = True

    def _compile(self) -> list[tuple[str, Path]]:
        from setuptools import Distribution, Extension
        from setuptools.command.build_ext import build_ext

        out = Path(tempfile.mkdtemp(prefix="perflayer-ext-"))
        exts = [Extension(module, [os.path.join(self.root, src)]) for module, src in EXTENSIONS]
        dist = Distribution({"name": "perflayer", "ext_modules": exts})
        cmd = build_ext(dist)
        cmd.build_lib = str(out / "lib")
        cmd.build_temp = str(out / "tmp")
        cmd.ensure_finalized()
        cmd.run()
        return [(module, Path(cmd.get_ext_fullpath(module))) for module, _ in EXTENSIONS]
