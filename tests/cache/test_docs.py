"""The examples in docs/cache.md and in the cache modules' docstrings run as written."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

import perflayer.cache._async
import perflayer.cache._core
import perflayer.cache._levels
import perflayer.cache._memo

DOC = Path(__file__).resolve().parents[2] / "docs" / "cache.md"


def test_docs_cache_md_examples() -> None:
    """Every >>> example in docs/cache.md passes."""
    result = doctest.testfile(str(DOC), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 10
    assert result.failed == 0


@pytest.mark.parametrize(
    "module",
    [perflayer.cache._core, perflayer.cache._async, perflayer.cache._levels, perflayer.cache._memo],
    ids=lambda m: m.__name__,
)
def test_docstring_examples(module: object) -> None:
    """Docstring examples of the public classes pass."""
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)  # type: ignore[arg-type]
    assert result.failed == 0
