"""Package-level checks: version, public names, CLI start-up."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

import perflayer
from perflayer import errors


def test_version_matches_metadata() -> None:
    """__version__ comes from the installed package metadata."""
    assert perflayer.__version__ == version("perflayer")


def test_all_is_sorted_and_resolvable() -> None:
    """__all__ is sorted and every name in it exists."""
    assert list(perflayer.__all__) == sorted(perflayer.__all__)
    for name in perflayer.__all__:
        assert hasattr(perflayer, name), name


def test_errors_subclass_builtins() -> None:
    """Misuse errors are builtins too, so callers can catch ValueError or TypeError."""
    assert issubclass(errors.ConfigError, ValueError)
    assert issubclass(errors.CacheKeyError, TypeError)
    assert issubclass(errors.MemoryPressureError, MemoryError)


def test_cli_version() -> None:
    """`perflayer --version` prints the version and exits 0."""
    out = subprocess.run(
        [sys.executable, "-m", "perflayer.cli", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == f"perflayer {perflayer.__version__}"


def test_cli_imports_nothing_heavy() -> None:
    """Importing the CLI does not import redis, rich or the analyzer."""
    code = (
        "import sys, perflayer.cli; "
        "mods = ('redis', 'rich', 'psutil', 'perflayer.analyze'); "
        "heavy = [m for m in mods if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
