"""stream_file and process_in_chunks: same data as plain reads, bounded, lazy, never silent."""

from __future__ import annotations

import gc
import json
import mmap
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from perflayer.errors import BudgetError, ConfigError
from perflayer.memory import Level, MemoryGuard, process_in_chunks, stream_file
from perflayer.memory._rss import RssReader
from perflayer.monitor import Monitor

MiB = 1 << 20


@pytest.fixture
def text_file(tmp_path: Path) -> Path:
    """A file with assorted line lengths, a CRLF line and no final newline."""
    path = tmp_path / "lines.txt"
    lines = [f"line {i} " + "x" * (i % 97) for i in range(5000)]
    path.write_bytes(("\n".join(lines) + "\r\nlast without newline").encode())
    return path


def test_lines_match_plain_iteration(text_file: Path) -> None:
    """mode="lines" yields exactly what ``for line in open(path)`` yields."""
    with open(text_file, encoding="utf-8") as f:
        expected = list(f)
    stream = stream_file(text_file, chunk_bytes=4096)
    assert list(stream) == expected
    assert stream.closed  # closed as soon as the last line was read
    assert stream.fraction_done == 1.0


def test_bytes_chunks_are_bounded_and_complete(text_file: Path) -> None:
    """mode="bytes" yields chunks of at most chunk_bytes that add up to the file."""
    chunks = list(stream_file(text_file, mode="bytes", chunk_bytes=1000))
    assert all(0 < len(c) <= 1000 for c in chunks)
    assert b"".join(chunks) == text_file.read_bytes()


def test_jsonl(tmp_path: Path) -> None:
    """mode="jsonl" parses each line, skips blank ones, names the line of bad JSON."""
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n\n[2, 3]\n"s"\n')
    assert list(stream_file(path, mode="jsonl")) == [{"a": 1}, [2, 3], "s"]
    path.write_text('{"a": 1}\n{oops\n')
    stream = stream_file(path, mode="jsonl")
    with pytest.raises(ValueError, match=r"x\.jsonl:2: invalid JSON"):
        list(stream)
    assert stream.closed


def test_early_break_closes_without_warning(text_file: Path) -> None:
    """Breaking out early closes the file when the iterator goes away (no ResourceWarning)."""
    stream = stream_file(text_file)
    for i, _ in enumerate(stream):
        if i == 3:
            break
    assert not stream.closed
    assert 0 < stream.fraction_done < 1
    stream.close()
    assert stream.closed
    with stream_file(text_file) as s:
        next(iter(s))
    assert s.closed
    # Dropped without close: the finalizer closes the descriptor, warnings are errors here.
    it = iter(stream_file(text_file))
    next(it)
    del it


def test_stream_misuse(text_file: Path) -> None:
    """Bad mode or chunk size is a ConfigError naming the value; a missing file is OSError."""
    with pytest.raises(ConfigError, match="'words'"):
        stream_file(text_file, mode="words")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="0"):
        stream_file(text_file, chunk_bytes=0)
    with pytest.raises(FileNotFoundError):
        stream_file(text_file.parent / "missing.txt")


def test_streaming_a_big_file_keeps_rss_flat(tmp_path: Path) -> None:
    """Streaming 64 MiB of lines with 1 MiB chunks raises RSS far less than the file size."""
    path = tmp_path / "big.txt"
    line = ("y" * 99 + "\n").encode()
    with open(path, "wb") as f:
        for _ in range(64):
            f.write(line * (MiB // len(line)))
    rss = RssReader()
    base = rss()
    peak = base
    n = 0
    for n, _ in enumerate(stream_file(path, chunk_bytes=MiB), 1):
        if n % 50_000 == 0:
            peak = max(peak, rss())
    rss.close()
    assert n == 64 * (MiB // len(line))
    assert peak - base <= 16 * MiB


def numbers(n: int, pulled: list[int]) -> Iterator[str]:
    """Yield ``n`` 100-byte strings, recording how many were pulled."""
    for i in range(n):
        pulled[0] += 1
        yield f"{i:0100d}"


def test_process_in_chunks_is_lazy_and_complete() -> None:
    """Every item is processed once, in order, in byte-sized chunks, never materialized."""
    pulled = [0]
    seen: list[str] = []
    ahead: list[int] = []

    def fn(chunk: list[str]) -> int:
        ahead.append(pulled[0] - len(seen) - len(chunk))
        seen.extend(chunk)
        return sum(map(len, chunk))

    run = process_in_chunks(
        numbers(20_000, pulled), fn, memory_budget=64 * 1024, guard=guard_for_tests()
    )
    assert run.fraction_done is None and pulled[0] == 0
    results = run.run()
    assert seen == [f"{i:0100d}" for i in range(20_000)]
    assert sum(results) == 20_000 * 100 == run.bytes_done
    assert run.items_done == 20_000 and run.fraction_done == 1.0 and run.done
    assert max(ahead) == 0  # nothing pulled beyond the chunk being processed
    assert run.chunks_done == len(results) > 10
    assert run.chunk_bytes <= 32 * 1024


def test_fraction_done_with_len_and_file(text_file: Path) -> None:
    """fraction_done follows len() of a sized input, or the bytes read of a FileStream."""
    fracs: list[float | None] = []
    data = ["abc"] * 10_000
    run = process_in_chunks(data, lambda c: fracs.append(None), memory_budget=16 * 1024)
    for _ in run:
        fracs.append(run.fraction_done)
    progress = [f for f in fracs if f is not None]
    assert progress == sorted(progress) and 0 < progress[0] < 1 and progress[-1] == 1.0
    stream = stream_file(text_file)
    run2 = process_in_chunks(stream, len, memory_budget=32 * 1024)
    first = next(run2)
    assert first > 0 and run2.fraction_done is not None and 0 < run2.fraction_done < 1
    assert sum(run2) + first == 5001
    assert run2.fraction_done == 1.0


def test_budget_too_small_raises() -> None:
    """A budget below two minimum chunks raises BudgetError before reading anything."""
    with pytest.raises(BudgetError, match="memory_budget=100"):
        process_in_chunks(iter(["a"]), len, memory_budget=100)
    assert issubclass(BudgetError, MemoryError)


def test_oversized_item_raises_instead_of_stopping() -> None:
    """An item bigger than the budget mid-stream raises; it never stops silently."""
    items = ["a" * 100] * 500 + ["b" * 100_000] + ["c"] * 10
    done: list[int] = []
    run = process_in_chunks(iter(items), lambda c: done.append(len(c)), memory_budget=50_000)
    with pytest.raises(BudgetError, match="exceeds memory_budget=50000"):
        run.run()
    assert sum(done) <= 500 and not run.done


def test_file_lines_in_chunks_are_complete_and_byte_bounded(text_file: Path) -> None:
    """A FileStream of lines comes in order, in chunks near the target, with an honest size."""
    with open(text_file, encoding="utf-8") as f:
        expected = list(f)
    chunks: list[list[str]] = []
    stream = stream_file(text_file)
    run = process_in_chunks(stream, chunks.append, memory_budget=64 * 1024, max_chunk_bytes=8192)
    run.run()
    assert [line for c in chunks for line in c] == expected
    assert run.done and stream.closed and run.items_done == len(expected)
    longest = max(map(len, expected))
    assert all(sum(map(len, c)) <= 8192 + longest for c in chunks)
    assert all(sum(map(len, c)) > 8192 for c in chunks[:-1])  # whole lines up to the target
    total = sum(map(len, expected))
    # bytes_done never under-counts; it over-counts by less than a line per chunk.
    assert total <= run.bytes_done < total + run.chunks_done * longest


def test_file_lines_follow_the_adapted_target(text_file: Path) -> None:
    """The chunk target set between chunks (as pressure adaptation does) bounds the next chunk."""
    run = process_in_chunks(stream_file(text_file), len, memory_budget=64 * 1024)
    counts = [next(run)]
    run.chunk_bytes = 4096
    counts.append(next(run))
    assert counts[1] < counts[0]
    assert sum(run) + sum(counts) == 5001 and run.done


def test_partly_read_file_stream_continues_where_it_stopped(text_file: Path) -> None:
    """Lines already taken from the FileStream are not handed to fn again."""
    with open(text_file, encoding="utf-8") as f:
        expected = list(f)
    stream = stream_file(text_file)
    it = iter(stream)
    head = [next(it) for _ in range(10)]
    rest: list[str] = []
    process_in_chunks(stream, rest.extend, memory_budget=64 * 1024).run()
    assert head + rest == expected


def test_oversized_file_line_raises(tmp_path: Path) -> None:
    """A line of a file bigger than the budget raises BudgetError; never a silent stop."""
    path = tmp_path / "big.txt"
    path.write_text("short\n" * 3000 + "y" * 100_000 + "\n" + "tail\n" * 10)
    done: list[int] = []
    run = process_in_chunks(stream_file(path), lambda c: done.append(len(c)), memory_budget=50_000)
    with pytest.raises(BudgetError, match="item 3000 of 100001 bytes exceeds"):
        run.run()
    assert sum(done) <= 3000 and not run.done


def test_line_pushing_a_chunk_over_budget_raises(tmp_path: Path) -> None:
    """A line that fits alone but takes its chunk past the budget raises too."""
    path = tmp_path / "mixed.txt"
    path.write_text("a" * 9000 + "\n" + "b" * 11_000 + "\n")
    run = process_in_chunks(
        stream_file(path), len, memory_budget=20_000, min_chunk_bytes=1024, chunk_bytes=9500
    )
    with pytest.raises(BudgetError, match="over memory_budget=20000"):
        run.run()


def test_multibyte_text_across_decode_blocks(tmp_path: Path) -> None:
    """Text decoded in 64 KiB blocks matches a plain read, multi-byte characters included."""
    path = tmp_path / "utf8.txt"
    lines = [f"{i} " + "\u00e9\u4e2d\U0001f600" * (i % 40) + "\n" for i in range(20_000)]
    path.write_text("".join(lines), encoding="utf-8")
    assert list(stream_file(path)) == lines
    got: list[str] = []
    process_in_chunks(stream_file(path), got.extend, memory_budget=256 * 1024).run()
    assert got == lines


def guard_for_tests(**kw: object) -> MemoryGuard:
    """A guard that does not register metrics on the default monitor."""
    kw.setdefault("monitor", Monitor())
    # only this process' RSS moves the level: not the host's PSI or a cgroup limit below it
    kw.setdefault("psi", False)
    kw.setdefault("cgroup_root", str(Path(__file__).parent / "no-cgroup-here"))
    return MemoryGuard(**kw)  # type: ignore[arg-type]


def resident(n: int) -> mmap.mmap:
    """Map and touch ``n`` bytes."""
    m = mmap.mmap(-1, n)
    page = b"\x01" * 4096
    for _ in range(n // 4096):
        m.write(page)
    return m


def test_chunks_shrink_under_pressure_and_grow_back() -> None:
    """ELEVATED halves the chunk target; back at NORMAL it doubles up to the budget."""
    gc.collect()  # earlier garbage freed now cannot lower RSS below the baseline later
    reader = RssReader()
    limit = int((reader() + 40 * MiB) / 0.8)
    reader.close()
    guard = guard_for_tests(limit=limit, interval=0.001)
    held: list[mmap.mmap] = []
    sizes: list[int] = []
    run = process_in_chunks(
        ("z" * 1000 for _ in range(400_000)),
        lambda c: len(c),
        memory_budget=2 * MiB,
        max_chunk_bytes=MiB,
        guard=guard,
    )
    for i, _ in enumerate(run):
        sizes.append(run.chunk_bytes)
        if i == 20:
            held.append(resident(48 * MiB))
        if i == 30:
            held.clear()
    guard.close()
    assert run.done and run.items_done == 400_000
    assert run.shrinks >= 3 and run.grows >= 3
    assert min(sizes[21:31]) < sizes[20]
    assert sizes[-1] == MiB  # back at the full target (budget / 2)


@pytest.mark.parametrize(("interval", "every"), [(3600.0, 4), (1e-9, 1)])
def test_pressure_is_sampled_at_least_every_fourth_chunk(interval: float, every: int) -> None:
    """The run samples the guard every chunk when readings age fast, else every 4th at least."""
    guard = guard_for_tests(interval=interval)
    before = guard.samples
    run = process_in_chunks(["w" * 100] * 20_000, len, memory_budget=16 * 1024, guard=guard)
    run.run()
    guard.close()
    assert run.chunks_done > 40
    assert guard.samples - before >= run.chunks_done // every


def test_critical_backs_off_then_resumes() -> None:
    """At CRITICAL the run waits; once memory is freed it finishes every item."""
    gc.collect()  # earlier garbage freed now cannot lower RSS below the baseline later
    reader = RssReader()
    limit = int((reader() + 30 * MiB) / 0.95)
    reader.close()
    guard = guard_for_tests(limit=limit)
    held = [resident(40 * MiB)]
    assert guard.check() == Level.CRITICAL
    run = process_in_chunks(["q"] * 10_000, len, memory_budget=64 * 1024, guard=guard)

    def free_once_backing_off() -> None:
        # frees the memory only once the run is waiting, however late this thread runs
        deadline = time.monotonic() + 60
        while run.backoffs < 1 and time.monotonic() < deadline:
            time.sleep(0.005)
        held.clear()

    freer = threading.Thread(target=free_once_backing_off)
    freer.start()
    assert sum(run.run()) == 10_000
    freer.join()
    guard.close()
    assert run.backoffs >= 1


def test_critical_for_too_long_raises() -> None:
    """Pressure that never eases ends in BudgetError after backoff_timeout, not in silence."""
    gc.collect()  # earlier garbage freed now cannot lower RSS below the baseline later
    reader = RssReader()
    limit = int((reader() + 30 * MiB) / 0.95)
    reader.close()
    guard = guard_for_tests(limit=limit)
    held = [resident(40 * MiB)]
    run = process_in_chunks(
        ["q"] * 1000, len, memory_budget=64 * 1024, guard=guard, backoff_timeout=0.1
    )
    with pytest.raises(BudgetError, match="stayed CRITICAL"):
        run.run()
    held.clear()
    guard.close()


def square_sum(chunk: list[int]) -> int:
    """A picklable CPU-bound chunk function for the process pool."""
    return sum(x * x for x in chunk)


@pytest.mark.slow
def test_process_pool_matches_serial() -> None:
    """workers=2 runs fn in a process pool; results come back in order and complete."""
    data = list(range(50_000))
    serial = process_in_chunks(data, square_sum, memory_budget=256 * 1024, sizeof=lambda x: 28)
    parallel = process_in_chunks(
        iter(data), square_sum, memory_budget=256 * 1024, workers=2, sizeof=lambda x: 28
    )
    assert sum(parallel.run()) == sum(serial.run()) == sum(x * x for x in data)
    assert parallel.items_done == 50_000 and parallel.done


def test_rich_progress_bar(text_file: Path) -> None:
    """progress=True drives a rich bar to completion without changing results."""
    run = process_in_chunks(stream_file(text_file), len, memory_budget=64 * 1024, progress=True)
    assert sum(run.run()) == 5001


def test_process_in_chunks_misuse() -> None:
    """Bad arguments are ConfigErrors naming the value."""
    with pytest.raises(ConfigError, match="workers"):
        process_in_chunks([1], len, workers=-1)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="'lots'"):
        process_in_chunks([1], len, memory_budget="lots")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="fn"):
        process_in_chunks([1], 3)  # type: ignore[arg-type]


def test_jsonl_through_chunks(tmp_path: Path) -> None:
    """A JSONL file streamed into chunks sums to the same total as a plain read."""
    path = tmp_path / "d.jsonl"
    with open(path, "w") as f:
        for i in range(3000):
            f.write(json.dumps({"i": i}) + "\n")
    run = process_in_chunks(
        stream_file(path, mode="jsonl"),
        lambda c: sum(d["i"] for d in c),
        memory_budget=64 * 1024,
    )
    assert sum(run) == sum(range(3000))
    assert os.path.getsize(path) > 0
