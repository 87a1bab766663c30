"""One way for an integration to import its optional dependency, or say which extra brings it."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["require"]


def require(module: str, extra: str, who: str) -> Any:
    """Return ``module`` imported, or raise an ImportError naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(
            f"{who} needs {module.split('.')[0]}: pip install 'perflayer[{extra}]'"
        ) from e
