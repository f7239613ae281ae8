"""Start-up time of `gateway` commands as whole processes: median and p90 wall and CPU time.

    python benchmarks/cli_startup.py --runs 20
    python benchmarks/cli_startup.py --runs 20 --peer /work/main   # another checkout, same run

Each command runs against one small data directory (a user and a source), as a person runs it:
a new interpreter, bytecode cached (one warm-up run each; PYTHONDONTWRITEBYTECODE is removed
from the environment so the cache is written). With `--peer`, the runs of the two checkouts
alternate, so a busy machine slows both alike; compare the ratio, not the seconds.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS: list[tuple[str, ...]] = [
    ("--help",),
    ("user", "list"),
    ("source", "list"),
    ("identity", "list", "--user", "alice"),
]


def environment(checkout: Path, data_dir: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(checkout)
    env["GATEWAY_DATA_DIR"] = str(data_dir)
    return env


def run(env: dict[str, str], *args: str, stdin: str | None = None) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one `python -m gateway ARGS`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        env=env,
        # Not from a checkout: `python -m` puts the working directory first on sys.path,
        # which would make both checkouts run this one's code.
        cwd=Path(env["GATEWAY_DATA_DIR"]).parent,
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def prepare(env: dict[str, str]) -> None:
    run(env, "migrate")
    run(env, "user", "add", "alice", stdin="alice-pw\n")
    run(
        env,
        *("source", "add", "--user", "alice", "--name", "isp", "--protocol", "imap"),
        *("--host", "imap.example.org", "--port", "993", "--security", "tls"),
        *("--username", "alice"),
        stdin="source-pw\n",
    )


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--peer", type=Path, help="another checkout to measure in the same run")
    options = parser.parse_args()
    checkouts = {"this": ROOT}
    if options.peer:
        checkouts["peer"] = options.peer.resolve()
    with tempfile.TemporaryDirectory(prefix="cli-startup-") as scratch:
        envs = {name: environment(path, Path(scratch) / name) for name, path in checkouts.items()}
        for env in envs.values():
            prepare(env)
        print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
        print(f"{'command':<28} {'checkout':<6} {'wall median':>11} {'p90':>7} {'CPU median':>10}")
        for command in COMMANDS:
            walls: dict[str, list[float]] = {name: [] for name in envs}
            cpus: dict[str, list[float]] = {name: [] for name in envs}
            for env in envs.values():
                run(env, *command)  # warm-up: writes the bytecode cache
            for _ in range(options.runs):
                for name, env in envs.items():
                    wall, cpu = run(env, *command)
                    walls[name].append(wall)
                    cpus[name].append(cpu)
            for name in envs:
                print(
                    f"{' '.join(command):<28} {name:<6} "
                    f"{statistics.median(walls[name]):>10.3f}s "
                    f"{percentile(walls[name], 0.9):>6.3f}s "
                    f"{statistics.median(cpus[name]):>9.3f}s"
                )
            if "peer" in envs:
                ratio = statistics.median(walls["this"]) / statistics.median(walls["peer"])
                print(f"{'':<28} this/peer wall ratio {ratio:.2f}")
        print(f"load average after:  {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
