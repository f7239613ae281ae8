"""Process trees and their memory from /proc, for the benchmarks' memory figures."""

from __future__ import annotations

from pathlib import Path


def process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command name) for every process."""
    table: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        table[int(entry.name)] = (parent, name)
    return table


def process_tree(root: int) -> list[tuple[int, str]]:
    table = process_table()
    tree = [(root, table.get(root, (0, "?"))[1])]
    index = 0
    while index < len(tree):
        parent = tree[index][0]
        tree.extend((pid, name) for pid, (ppid, name) in table.items() if ppid == parent)
        index += 1
    return tree


def memory_kb(pid: int, field_name: str) -> int:
    """A field of /proc/PID/status (VmRSS) or /proc/PID/smaps_rollup (Pss), in kB."""
    source = "smaps_rollup" if field_name == "Pss" else "status"
    try:
        for line in Path(f"/proc/{pid}/{source}").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0
