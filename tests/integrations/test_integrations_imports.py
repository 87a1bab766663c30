"""Optional extras stay optional: lazy imports and ImportErrors that name the extra."""

from __future__ import annotations

import subprocess
import sys

import pytest

from perflayer.monitor import Monitor

PROBE = """
import sys
import perflayer
import perflayer.integrations.asgi
import perflayer.integrations.otel
print(sorted({m.split('.')[0] for m in sys.modules} & {'starlette', 'opentelemetry'}))
"""

BLOCKED = """
import sys
sys.modules['starlette'] = None
sys.modules['opentelemetry'] = None
from perflayer.integrations.asgi import PerflayerMiddleware, monitor_app
from perflayer.integrations.otel import register_otel
monitor_app()  # plain ASGI: works without starlette
for make in (lambda: PerflayerMiddleware(monitor_app()), register_otel):
    try:
        make()
    except ImportError as e:
        print(e)
"""


def test_import_perflayer_imports_no_optional_framework() -> None:
    """`import perflayer` (and the integration modules) import neither starlette nor OTel."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_missing_extras_name_the_pip_command_in_a_fresh_interpreter() -> None:
    """With the frameworks blocked, the middleware and the OTel bridge name their extra."""
    out = subprocess.run(
        [sys.executable, "-c", BLOCKED], capture_output=True, text=True, check=True, timeout=60
    )
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 2
    assert "pip install 'perflayer[asgi]'" in lines[0]
    assert "pip install 'perflayer[otel]'" in lines[1]


def test_missing_starlette_raises_import_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """PerflayerMiddleware without starlette raises ImportError naming perflayer[asgi]."""
    from perflayer.integrations.asgi import PerflayerMiddleware, monitor_app

    monkeypatch.setitem(sys.modules, "starlette", None)
    monkeypatch.setitem(sys.modules, "starlette.routing", None)
    with pytest.raises(ImportError, match=r"pip install 'perflayer\[asgi\]'"):
        PerflayerMiddleware(monitor_app(Monitor()), monitor=Monitor())


def test_missing_opentelemetry_raises_import_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """register_otel without opentelemetry-api raises ImportError naming perflayer[otel]."""
    from perflayer.integrations.otel import register_otel

    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    monkeypatch.setitem(sys.modules, "opentelemetry.metrics", None)
    with pytest.raises(ImportError, match=r"pip install 'perflayer\[otel\]'"):
        register_otel(monitor=Monitor())
