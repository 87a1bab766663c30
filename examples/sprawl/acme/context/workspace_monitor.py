"""Watch the workspace folder for changed strategy documents."""

from __future__ import annotations

import logging
import os
import time
from typing import Callable, Dict, List

logger = logging.getLogger(__name__)


class WorkspaceMonitor:
    """Poll a directory and report files that were added, changed or removed."""

    def __init__(self, root: str, patterns: tuple = (".md", ".txt"), interval: float = 2.0):
        self.root = root
        self.patterns = patterns
        self.interval = interval
        self._mtimes: Dict[str, float] = {}
        self._callbacks: List[Callable[[str, str], None]] = []
        self.running = False

    def on_change(self, callback: Callable[[str, str], None]) -> None:
        """Call ``callback(event, path)`` for each change."""
        self._callbacks.append(callback)

    def scan(self) -> Dict[str, float]:
        """Return the modification time of every matching file."""
        found: Dict[str, float] = {}
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                if name.endswith(self.patterns):
                    path = os.path.join(dirpath, name)
                    try:
                        found[path] = os.path.getmtime(path)
                    except OSError:
                        continue
        return found

    def poll_once(self) -> List[str]:
        """Compare with the last scan and fire callbacks; return changed paths."""
        current = self.scan()
        changed: List[str] = []
        for path, mtime in current.items():
            if path not in self._mtimes:
                self._fire("added", path)
                changed.append(path)
            elif mtime > self._mtimes[path]:
                self._fire("modified", path)
                changed.append(path)
        for path in set(self._mtimes) - set(current):
            self._fire("removed", path)
            changed.append(path)
        self._mtimes = current
        return changed

    def _fire(self, event: str, path: str) -> None:
        for callback in self._callbacks:
            try:
                callback(event, path)
            except Exception:  # noqa: BLE001
                logger.exception("workspace callback failed")

    def run(self) -> None:
        """Poll until ``running`` is cleared."""
        self.running = True
        while self.running:
            self.poll_once()
            time.sleep(self.interval)
