"""Scan a tree in parallel: discover files, parse and detect in worker processes.

Work is sent as chunks of paths (workers read the files themselves, so no source crosses a
pipe) and comes back as small :class:`FileResult` objects. Small trees run in-process: starting
workers costs more than parsing a few hundred kilobytes. A worker that dies (a pathological
file crashing the interpreter) breaks only its chunk: those files are retried one by one and the
one that kills its worker again is reported as skipped.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import sys
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from perflayer.analyze._discover import iter_python_files
from perflayer.analyze._extract import FileResult, Options, extract_file, module_name
from perflayer.analyze._model import Skipped

__all__ = ["ScanResult", "scan"]

ScanResult = tuple[list[FileResult], list[Skipped]]
Progress = Callable[[int, int], None]

# In-process below this many bytes: a process pool costs ~50 ms to start and feed.
_INPROCESS_BYTES = 1_500_000
_CHUNK_BYTES = 400_000

_options: Options = Options()
# 3.12+ warns when forking a process that has threads; use the platform default there.
_FORK_OK = sys.version_info < (3, 12)


def _init(options: Options) -> None:
    global _options
    _options = options
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 3000))


def _work(chunk: list[tuple[str, str]]) -> list[FileResult | Skipped]:
    # why: parsing allocates hundreds of thousands of AST nodes per chunk, and the cyclic
    # collector would sweep them again and again (10-15% of the worker's CPU). Syntax trees
    # hold no cycles, so refcounting frees them; one full collection per chunk reclaims the
    # few cycles left (a class unit and its methods point at each other).
    enabled = gc.isenabled()
    gc.disable()
    try:
        return [extract_file(path, rel, _options) for path, rel in chunk]
    finally:
        if enabled:
            gc.enable()
            gc.collect()


def _suffixes(modules: list[str]) -> frozenset[str]:
    out: set[str] = set()
    for mod in modules:
        parts = mod.split(".")
        for i in range(len(parts)):
            out.add(".".join(parts[i:]))
    return frozenset(out)


def _context() -> multiprocessing.context.BaseContext:
    # fork is the cheapest start on Linux and safe here (3.11, no threads in the parent);
    # elsewhere take the platform default.
    method = "fork" if sys.platform.startswith("linux") and _FORK_OK else None
    return multiprocessing.get_context(method)


def scan(
    root: str,
    jobs: int | None = None,
    max_bytes: int = 2_000_000,
    progress: Progress | None = None,
) -> ScanResult:
    """Analyze every Python file under ``root`` with ``jobs`` processes (default: all cores)."""
    root = os.path.abspath(root)
    base = root if os.path.isdir(root) else os.path.dirname(root)
    files: list[tuple[str, str, int]] = []
    for path in iter_python_files(root):
        rel = os.path.relpath(path, base).replace(os.sep, "/")
        try:
            size = os.path.getsize(path)
        except OSError:
            size = 0
        files.append((path, rel, size))
    modules = _suffixes([module_name(rel) for _, rel, _ in files])
    options = Options(max_bytes=max_bytes, modules=modules)
    total_bytes = sum(s for _, _, s in files)
    workers = jobs if jobs is not None else (os.cpu_count() or 1)
    results: list[FileResult | Skipped] = []
    done = 0
    if workers <= 1 or total_bytes < _INPROCESS_BYTES or len(files) < 4:
        enabled = gc.isenabled()
        gc.disable()  # why: see _work
        try:
            for path, rel, _ in files:
                results.append(extract_file(path, rel, options))
                done += 1
                if progress is not None and (done % 50 == 0 or done == len(files)):
                    progress(done, len(files))
        finally:
            if enabled:
                gc.enable()
    else:
        results = _parallel(files, options, workers, progress)
    found = [r for r in results if isinstance(r, FileResult)]
    skipped = [r for r in results if isinstance(r, Skipped)]
    found.sort(key=lambda r: r.path)
    skipped.sort(key=lambda s: s.path)
    return found, skipped


def _chunks(files: list[tuple[str, str, int]], workers: int) -> list[list[tuple[str, str]]]:
    # Guided sizes: each chunk is a share of the bytes still unassigned, so chunks shrink
    # toward the end and the workers finish together (the last chunk is small when one worker
    # waits on the other), while the early ones are big enough to keep per-chunk costs low.
    remaining = sum(s for _, _, s in files)
    chunks: list[list[tuple[str, str]]] = []
    current: list[tuple[str, str]] = []
    size = 0
    target = max(20_000, min(_CHUNK_BYTES, remaining // (workers * 4) + 1))
    for path, rel, s in files:
        current.append((path, rel))
        size += s
        if size >= target:
            chunks.append(current)
            remaining -= size
            current, size = [], 0
            target = max(20_000, min(_CHUNK_BYTES, remaining // (workers * 4) + 1))
    if current:
        chunks.append(current)
    return chunks


def _parallel(
    files: list[tuple[str, str, int]],
    options: Options,
    workers: int,
    progress: Progress | None,
) -> list[FileResult | Skipped]:
    chunks = _chunks(files, workers)
    results: list[FileResult | Skipped] = []
    broken: list[list[tuple[str, str]]] = []
    done = 0
    ctx = _context()
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=_init, initargs=(options,)
    ) as pool:
        futures: list[tuple[Future[list[FileResult | Skipped]], list[tuple[str, str]]]] = [
            (pool.submit(_work, chunk), chunk) for chunk in chunks
        ]
        for fut, chunk in futures:
            try:
                results.extend(fut.result())
            except BrokenProcessPool:
                broken.append(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, len(files))
    for chunk in broken:
        for path, rel in chunk:
            results.append(_isolated(path, rel, options, ctx))
    return results


def _isolated(
    path: str, rel: str, options: Options, ctx: multiprocessing.context.BaseContext
) -> FileResult | Skipped:
    with ProcessPoolExecutor(
        max_workers=1, mp_context=ctx, initializer=_init, initargs=(options,)
    ) as pool:
        try:
            got = pool.submit(_work, [(path, rel)]).result()
        except BrokenProcessPool:
            return Skipped(rel, "crashed the parser (worker process died)")
    return got[0]
