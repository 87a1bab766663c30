"""Find the Python files under a root: honour .gitignore, skip virtualenvs, caches and builds."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["SKIP_DIRS", "GitIgnore", "iter_python_files"]

#: Directory names never descended into (below the root): VCS, caches, builds, virtualenvs.
SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".bzr",
        "__pycache__",
        ".venv",
        "venv",
        ".virtualenv",
        ".tox",
        ".nox",
        ".eggs",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".hypothesis",
        "site-packages",
        "dist-packages",
        "node_modules",
        "build",
        "dist",
        "_build",
        "htmlcov",
    }
)


@dataclass(frozen=True, slots=True)
class _Rule:
    regex: re.Pattern[str]
    negate: bool
    dir_only: bool


def _translate(pattern: str) -> str:
    """Translate one gitignore glob (without anchoring) to a regex body."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            if pattern.startswith("**", i):
                # "**/" matches zero or more directories, a trailing "**" everything below.
                if pattern.startswith("**/", i):
                    out.append("(?:.*/)?")
                    i += 3
                    continue
                out.append(".*")
                i += 2
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = pattern.find("]", i + 1)
            if j == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : j].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = j
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


class GitIgnore:
    """The rules of one .gitignore file, matched against paths relative to its directory."""

    def __init__(self, text: str) -> None:
        """Parse the text of a .gitignore file."""
        self.rules: list[_Rule] = []
        for raw in text.splitlines():
            line = raw.rstrip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            if negate:
                line = line[1:]
            if line.startswith("\\"):
                line = line[1:]
            dir_only = line.endswith("/")
            line = line.rstrip("/")
            if not line:
                continue
            anchored = "/" in line
            line = line.lstrip("/")
            body = _translate(line)
            # Unanchored patterns match a name at any depth; anchored ones from this directory.
            prefix = "" if anchored else "(?:.*/)?"
            try:
                regex = re.compile(f"^{prefix}{body}(?:/.*)?$")
            except re.error:
                continue
            self.rules.append(_Rule(regex, negate, dir_only))

    def ignored(self, rel: str, is_dir: bool) -> bool | None:
        """Return True/False if a rule decides ``rel`` (a /-path), None if no rule matches."""
        verdict: bool | None = None
        for rule in self.rules:
            # "build/" matches directories only; a file matches it through a parent directory.
            if (
                rule.dir_only
                and not is_dir
                and ("/" not in rel or not rule.regex.match(rel.rsplit("/", 1)[0]))
            ):
                continue
            if rule.regex.match(rel):
                verdict = not rule.negate
        return verdict


def _read_ignore(directory: str) -> GitIgnore | None:
    path = os.path.join(directory, ".gitignore")
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return GitIgnore(fh.read())
    except OSError:
        return None


def _is_virtualenv(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "pyvenv.cfg")) or os.path.isfile(
        os.path.join(path, "bin", "activate")
    )


def iter_python_files(root: str) -> Iterator[str]:
    """Yield the absolute paths of the .py files under ``root``, sorted, skipping ignored ones."""
    root = os.path.abspath(root)
    if os.path.isfile(root):
        yield root
        return
    # Stack of (directory, [(ignore-dir, GitIgnore), ...]) so nested .gitignore files apply.
    stack: list[tuple[str, list[tuple[str, GitIgnore]]]] = []
    top = _read_ignore(root)
    stack.append((root, [(root, top)] if top else []))
    found: list[str] = []
    while stack:
        directory, ignores = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            name = entry.name
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
                is_file = entry.is_file()
            except OSError:
                continue
            if is_dir:
                if name in SKIP_DIRS or name.endswith(".egg-info") or _is_virtualenv(entry.path):
                    continue
            elif not (is_file and name.endswith(".py")):
                continue
            if _decide(ignores, entry.path, is_dir):
                continue
            if is_dir:
                sub = _read_ignore(entry.path)
                stack.append((entry.path, [*ignores, (entry.path, sub)] if sub else ignores))
            else:
                found.append(entry.path)
    found.sort()
    yield from found


def _decide(ignores: list[tuple[str, GitIgnore]], path: str, is_dir: bool) -> bool:
    verdict = False
    for base, rules in ignores:
        rel = os.path.relpath(path, base).replace(os.sep, "/")
        decided = rules.ignored(rel, is_dir)
        if decided is not None:
            verdict = decided
    return verdict
