"""The allocator cap `gateway serve` applies before its threads start."""

from __future__ import annotations

import platform

import pytest

from gateway.memory_tuning import limit_malloc_arenas


def test_arena_cap_applies_on_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert platform.libc_ver()[0] == "glibc", "the CI machine runs Debian (glibc)"
    assert limit_malloc_arenas(2) is True


def test_an_operators_malloc_arena_max_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas(2) is False
