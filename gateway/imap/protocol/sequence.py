"""Sequence sets (RFC 3501 §9 `sequence-set`): `1:4,7,9:*`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

# One range of a set; None stands for "*", the largest number in use (RFC 3501 §6.4.8).
Bound = int | None


@dataclass(frozen=True)
class SequenceSet:
    """A parsed sequence set; `*` is resolved only when the mailbox size is known."""

    ranges: tuple[tuple[Bound, Bound], ...]
    # RFC 5182 `$` (SEARCHRES) is not advertised; kept out on purpose.

    def resolve(self, largest: int) -> list[tuple[int, int]]:
        """Ranges with `*` replaced by `largest`, each ordered low..high (RFC 3501: 4:2 == 2:4)."""
        resolved: list[tuple[int, int]] = []
        for first, last in self.ranges:
            low = largest if first is None else first
            high = largest if last is None else last
            if low > high:
                low, high = high, low
            resolved.append((low, high))
        return resolved

    def contains(self, value: int, largest: int) -> bool:
        return any(low <= value <= high for low, high in self.resolve(largest))

    def iter_values(self, largest: int) -> Iterator[int]:
        """Every value in ascending order, without duplicates, capped at `largest`."""
        seen: set[int] = set()
        for low, high in sorted(self.resolve(largest)):
            for value in range(low, min(high, largest) + 1):
                if value not in seen:
                    seen.add(value)
                    yield value

    def __str__(self) -> str:
        def bound(value: Bound) -> str:
            return "*" if value is None else str(value)

        return ",".join(
            bound(first) if first == last else f"{bound(first)}:{bound(last)}"
            for first, last in self.ranges
        )
