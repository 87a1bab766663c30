"""The examples in docs/tiers.md and in the tier modules' docstrings run as written."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

import perflayer.cache._codec
import perflayer.cache._disk
import perflayer.cache._tiered
import perflayer.cache._tiers

DOC = Path(__file__).resolve().parents[2] / "docs" / "tiers.md"


def test_docs_tiers_md_examples() -> None:
    """Every >>> example in docs/tiers.md passes."""
    result = doctest.testfile(str(DOC), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 10
    assert result.failed == 0


@pytest.mark.parametrize(
    "module",
    [
        perflayer.cache._codec,
        perflayer.cache._disk,
        perflayer.cache._tiered,
        perflayer.cache._tiers,
    ],
    ids=lambda m: m.__name__,
)
def test_docstring_examples(module: object) -> None:
    """Docstring examples of the tier classes pass."""
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)  # type: ignore[arg-type]
    assert result.attempted >= 1
    assert result.failed == 0
