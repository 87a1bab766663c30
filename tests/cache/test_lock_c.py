"""The C cache lock (_fastpath_c.Lock): threading.Lock's API and semantics.

Every cache built with the C extensions enabled holds one as ``_lock``; the C new-key path takes
it without a method call, the Python paths through ``acquire``/``release``. These tests hold it
to threading.Lock's answers side by side, and check that the C insert and the Python methods
exclude each other through it. No timing is asserted: a wait that must time out uses a short
timeout while the lock is held for certain, and a wait that must succeed has no timeout.
The extension is imported at module level on purpose: if it is not built, these tests fail.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

import pytest

from perflayer.cache import Cache
from perflayer.cache._fastpath_c import Lock
from perflayer.cache._native import native_enabled

LOCKS = {"c": Lock, "threading": threading.Lock}


@pytest.fixture(params=sorted(LOCKS))
def lock(request: pytest.FixtureRequest) -> Any:
    return LOCKS[request.param]()


def test_acquire_release_locked(lock: Any) -> None:
    assert lock.locked() is False
    assert lock.acquire() is True
    assert lock.locked() is True
    assert lock.acquire(False) is False
    assert lock.acquire(blocking=False) is False
    assert lock.acquire(timeout=0) is False
    assert lock.acquire(True, 0.01) is False
    assert lock.release() is None
    assert lock.locked() is False
    assert lock.acquire(blocking=False) is True
    lock.release()
    assert lock.acquire(timeout=5) is True
    lock.release()


def test_release_unlocked_raises(lock: Any) -> None:
    with pytest.raises(RuntimeError, match="release unlocked lock"):
        lock.release()
    assert lock.locked() is False


def test_context_manager(lock: Any) -> None:
    with lock as got:
        assert got is True
        assert lock.locked() is True
    assert lock.locked() is False
    with pytest.raises(KeyError), lock:
        raise KeyError("x")
    assert lock.locked() is False


@pytest.mark.parametrize(
    ("args", "kwargs", "exc"),
    [
        ((False, 1), {}, ValueError),
        ((), {"blocking": False, "timeout": 0.5}, ValueError),
        ((), {"timeout": -2}, ValueError),
        ((), {"timeout": "1"}, TypeError),
        ((), {"nope": 1}, TypeError),
        ((True, 1, 2), {}, TypeError),
    ],
)
def test_bad_arguments_raise_as_threading(
    lock: Any, args: tuple[Any, ...], kwargs: dict[str, Any], exc: type[Exception]
) -> None:
    with pytest.raises(exc):
        lock.acquire(*args, **kwargs)
    assert lock.locked() is False


def test_no_constructor_arguments() -> None:
    with pytest.raises(TypeError, match="no arguments"):
        Lock(1)  # type: ignore[call-arg]


def test_repr_says_locked_or_not() -> None:
    lk = Lock()
    assert repr(lk).startswith("<unlocked perflayer.cache._fastpath_c.Lock object at ")
    lk.acquire()
    assert repr(lk).startswith("<locked ")
    lk.release()


def test_a_second_thread_waits_until_release(lock: Any) -> None:
    # the other thread blocks (no timeout) while we hold the lock, and gets it once we release
    lock.acquire()
    started = threading.Event()
    got: list[bool] = []

    def other() -> None:
        started.set()
        got.append(lock.acquire(timeout=0.01))  # held by us for certain: times out
        got.append(lock.acquire())  # waits for our release
        lock.release()

    t = threading.Thread(target=other)
    t.start()
    assert started.wait(30)
    while len(got) < 1:  # (its timed-out attempt, while we still hold the lock)
        t.join(0.01)
    lock.release()
    t.join(30)
    assert not t.is_alive()
    assert got == [False, True]
    assert lock.locked() is False


class _Interrupted(Exception):
    pass


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs signal.setitimer")
def test_a_wait_runs_signal_handlers(lock: Any) -> None:
    # a blocked acquire runs the handlers: one that raises ends the wait with its exception; one
    # that returns lets the wait go on (here it releases the lock, so the wait then takes it).
    # The timer repeats until a handler stops it: a signal that lands between the wait's
    # non-blocking try and its blocking call only sets the flag (as for threading.Lock), and the
    # next one interrupts the wait; however late each one comes, the outcome is the same.
    raised: list[int] = []
    released: list[int] = []

    def raising(signum: int, frame: Any) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        if not raised:  # (once, even if a last signal was already pending)
            raised.append(signum)
            raise _Interrupted

    def releasing(signum: int, frame: Any) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        if not released:  # (once, even if a last signal was already pending)
            released.append(signum)
            lock.release()

    old = signal.signal(signal.SIGALRM, raising)
    lock.acquire()
    try:
        with pytest.raises(_Interrupted):
            signal.setitimer(signal.ITIMER_REAL, 0.02, 0.02)
            lock.acquire()  # (held by this thread: only a signal ends the wait)
        assert lock.locked() is True
        signal.signal(signal.SIGALRM, releasing)
        signal.setitimer(signal.ITIMER_REAL, 0.02, 0.02)
        assert lock.acquire() is True  # (taken again after the handler released it)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert raised == [signal.SIGALRM]
    assert released == [signal.SIGALRM]
    assert lock.locked() is True
    lock.release()


@pytest.mark.skipif(not native_enabled(), reason="PERFLAYER_PURE_PYTHON: threading.Lock")
def test_cache_holds_a_c_lock_that_the_c_insert_waits_for() -> None:
    c = Cache(100, metrics=False)
    assert type(c._lock) is Lock
    c._lock.acquire()  # as a Python locked command would hold it
    done = threading.Event()

    def writer() -> None:
        c.set("k", 1, ex=60)  # the C new-key insert: blocks on the held lock
        done.set()

    t = threading.Thread(target=writer)
    t.start()
    assert not done.wait(0.05)  # (cannot finish while the lock is held, however slow)
    assert "k" not in c._data
    c._lock.release()
    t.join(30)
    assert done.is_set()
    assert c.get("k") == 1
    assert c._lock.locked() is False
    # the Python locked paths take and release the same lock
    assert c.incr("n") == 1
    assert c.delete("k") == 1
    assert c._lock.locked() is False


def test_pure_python_cache_keeps_threading_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERFLAYER_PURE_PYTHON", "1")
    c = Cache(100, metrics=False)
    assert type(c._lock) is type(threading.Lock())
    c.set("a", 1)
    assert c.get("a") == 1
