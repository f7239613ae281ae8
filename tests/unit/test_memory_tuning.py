"""The allocator cap and collector settings `gateway serve` applies."""

from __future__ import annotations

import asyncio
import platform
import subprocess
import sys

import pytest

from gateway.memory_tuning import HeapTrimmer, limit_malloc_arenas


def test_arena_cap_applies_on_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert platform.libc_ver()[0] == "glibc", "the CI machine runs Debian (glibc)"
    assert limit_malloc_arenas(2) is True


def test_an_operators_malloc_arena_max_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas(2) is False


def test_tuned_collector_still_frees_cycles_and_skips_start_up_objects() -> None:
    # gc settings are process-wide: check them in a process of their own.
    script = """
import gc, weakref
from gateway.memory_tuning import GC_YOUNG_THRESHOLD, tune_garbage_collector
start_up = [object() for _ in range(1000)]
tune_garbage_collector()
assert gc.get_threshold()[0] == GC_YOUNG_THRESHOLD
assert gc.get_freeze_count() >= 1000
class Node:
    pass
freed = []
node = Node()
node.self = node
weakref.finalize(node, freed.append, True)
del node
assert not freed  # a cycle waits for the next collection ...
kept = [[] for _ in range(GC_YOUNG_THRESHOLD * 2)]  # live containers, as a FETCH builds
assert freed == [True], "... which comes by itself"
print("ok")
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_freed_heap_between_live_objects_goes_back_to_the_os() -> None:
    """What Python frees in the middle of the heap stays in RSS until `malloc_trim`."""
    script = """
import gc
from gateway.memory_tuning import release_free_heap
def anon_mb():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
gc.disable()
# Blocks above pymalloc's 512 bytes come from the C heap, as large responses' buffers do.
chunks = [bytes(2000) + bytes([n % 256]) for n in range(60_000)]  # ~120 MB
kept = chunks[::200]  # live objects all over the heap keep its top from shrinking
del chunks
before = anon_mb()
assert release_free_heap()
after = anon_mb()
print(round(before - after))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) >= 50, f"only {result.stdout.strip()} MB returned"


class FakeProcess:
    """CPU time that a test script spends, and the trims the trimmer asks for."""

    def __init__(self) -> None:
        self.cpu = 0.0
        self.trims = 0

    def trim(self) -> bool:
        self.trims += 1
        return True


def test_heap_is_trimmed_once_after_a_burst_when_the_process_goes_quiet() -> None:
    asyncio.run(trim_after_burst())


async def trim_after_burst() -> None:
    process = FakeProcess()
    trimmer = HeapTrimmer(period=0.01, cpu_time=lambda: process.cpu, trim=process.trim)
    trimmer.start()
    try:
        await asyncio.sleep(0.05)
        assert process.trims == 0, "no work yet: nothing to give back"
        for _ in range(5):  # busy: a second of CPU per period
            process.cpu += 1.0
            await asyncio.sleep(0.01)
        busy_trims = process.trims
        await asyncio.sleep(0.1)  # quiet
        assert process.trims == busy_trims + 1, "one trim once quiet, not one per idle period"
        process.cpu += 0.05  # a small burst is not worth a trim
        await asyncio.sleep(0.1)
        assert process.trims == busy_trims + 1
    finally:
        await trimmer.stop()


def test_a_failing_trim_is_logged_and_the_trimmer_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    asyncio.run(trim_after_failure())
    assert "event=heap_trim_failed" in caplog.text


async def trim_after_failure() -> None:
    process = FakeProcess()
    calls: list[int] = []

    def failing_once() -> bool:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("malloc_trim unavailable")
        return process.trim()

    trimmer = HeapTrimmer(period=0.01, cpu_time=lambda: process.cpu, trim=failing_once)
    trimmer.start()
    try:
        await asyncio.sleep(0.03)  # the trimmer has taken its first reading
        for _ in range(2):  # two bursts, each followed by quiet
            process.cpu += 1.0
            await asyncio.sleep(0.1)
        assert len(calls) == 2 and process.trims == 1
    finally:
        await trimmer.stop()
