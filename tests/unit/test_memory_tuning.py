"""The allocator cap and collector settings `gateway serve` applies."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from gateway.memory_tuning import limit_malloc_arenas


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
