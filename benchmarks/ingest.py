"""Ingest throughput and memory: messages/s, MB/s and peak RSS on SQLite and PostgreSQL.

    .venv/bin/python benchmarks/ingest.py [--count 10000] [--backend both|sqlite|postgres]

The corpus (deterministic seed: sizes with a ~20 KB median and multi-MB attachments, MIME mix,
Japanese and malformed mail) is written to disk first, so generating it is not timed. Each backend
runs in a fresh child process so its peak RSS is its own; the child reports peak RSS after the
first 20 % and at the end, which shows whether memory grows with the corpus. Ingest is durable:
blobs are synced and rows committed (SQLite synchronous=FULL) once per batch.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptography.fernet import Fernet  # noqa: E402

from benchmarks.workdir import add_location_arguments, clear_and_settle  # noqa: E402
from gateway.settings import Settings  # noqa: E402
from gateway.store import MailStore, NewMessage, open_store  # noqa: E402
from tests.support.corpus import generate_corpus, malformed_corpus  # noqa: E402
from tests.support.fixtures_store import PostgresDatabase  # noqa: E402

MALFORMED_EVERY = 40


def write_corpus(directory: Path, count: int, seed: int) -> tuple[int, int]:
    """Write `count` messages as numbered files; returns (count, total bytes)."""
    marker = directory / f"corpus-{count}-{seed}.done"
    if marker.exists():
        files = sorted(directory.glob("*.eml"))
        return len(files), sum(f.stat().st_size for f in files)
    malformed = [raw for _, raw in malformed_corpus()]
    generated = generate_corpus(count, seed=seed)
    total = 0
    for index in range(count):
        raw = (
            malformed[(index // MALFORMED_EVERY) % len(malformed)]
            if index % MALFORMED_EVERY == MALFORMED_EVERY - 1
            else next(generated)
        )
        (directory / f"{index:07d}.eml").write_bytes(raw)
        total += len(raw)
    marker.touch()
    return count, total


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_usage(store: MailStore) -> tuple[float, float]:
    """(CPU seconds of all ingest workers, largest worker peak RSS in MB), from /proc."""
    pool = store._pool  # benchmark-only peek at the store's private worker pool
    if pool is None:
        return 0.0, 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    cpu, rss = 0.0, 0.0
    for pid in list(pool._processes):  # type: ignore[attr-defined]
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
        cpu += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                rss = max(rss, int(line.split()[1]) / 1024)
    return cpu, rss


def child(corpus: Path, data_dir: Path, database_url: str | None, batch: int) -> None:
    """Ingest the corpus into a fresh store and print one JSON line of figures."""
    # The data directory stays until the next run clears it (benchmarks/workdir.py): deleting
    # 10,000 files here would slow every file the next backend's run creates.
    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        secret_key=Fernet.generate_key().decode(),
        _env_file=None,  # type: ignore[call-arg]
    )
    store = open_store(settings)
    user = store.create_user(name="bench", password="bench")
    inbox = store.get_mailbox(user_id=user.id, name="INBOX").id
    files = sorted(corpus.glob("*.eml"))
    rss_at_fifth = 0.0
    rss_curve: list[float] = []  # peak RSS after each tenth of the corpus
    total_bytes = 0
    started = time.perf_counter()

    def batches():
        nonlocal total_bytes
        for start in range(0, len(files), batch):
            items = []
            for path in files[start : start + batch]:
                raw = path.read_bytes()
                total_bytes += len(raw)
                items.append(NewMessage(inbox, raw))
            yield items

    done = 0
    for results in store.append_message_batches(batches=batches()):
        done += len(results)
        if not rss_at_fifth and done >= len(files) // 5:
            rss_at_fifth = peak_rss_mb()
        while len(rss_curve) < 10 and done >= len(files) * (len(rss_curve) + 1) // 10:
            rss_curve.append(round(peak_rss_mb()))
    elapsed = time.perf_counter() - started
    count = store.mailbox_status(mailbox_id=inbox).messages
    # Workers are children of the multiprocessing forkserver, not of this process, so
    # RUSAGE_CHILDREN misses them: read their counters from /proc before they exit.
    worker_cpu, worker_rss = worker_usage(store)
    store.close()
    own = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "messages": count,
                "seconds": elapsed,
                "messages_per_second": count / elapsed,
                "mb_per_second": total_bytes / 1e6 / elapsed,
                "peak_rss_mb_at_20pct": rss_at_fifth,
                "peak_rss_mb_by_tenth": rss_curve,
                "peak_rss_mb": peak_rss_mb(),
                "cpu_main_ms_per_message": (own.ru_utime + own.ru_stime) * 1000 / count,
                "cpu_workers_ms_per_message": worker_cpu * 1000 / count,
                "peak_rss_mb_workers": worker_rss,
            }
        )
    )


def run_backend(name: str, corpus: Path, data_root: Path, batch: int) -> dict[str, float]:
    def launch(url: str | None) -> dict[str, float]:
        command = [sys.executable, __file__, "--child", str(corpus), "--batch", str(batch)]
        command += ["--work-dir", str(data_root / name)]
        if url:
            command += ["--database-url", url]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        figures: dict[str, float] = json.loads(output.strip().splitlines()[-1])
        return figures

    if name == "sqlite":
        return launch(None)
    with PostgresDatabase() as url:
        return launch(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--backend", choices=["both", "sqlite", "postgres"], default="both")
    add_location_arguments(parser, "ingest", "the data directories")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.work_dir, args.database_url, args.batch)
        return
    work_root = args.work_dir / "ingest"
    clear_and_settle(work_root)
    corpus_dir = args.corpus_dir / f"{args.count}-{args.seed}"
    corpus_dir.mkdir(parents=True, exist_ok=True)
    count, total = write_corpus(corpus_dir, args.count, args.seed)
    print(f"corpus: {count} messages, {total / 1e6:.1f} MB, batch {args.batch}, dir {corpus_dir}")
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    print(
        f"{'backend':10} {'msg/s':>7} {'MB/s':>6} {'seconds':>7} {'RSS@20% MB':>10} {'RSS MB':>6} "
        f"{'worker RSS MB':>13} {'CPU ms/msg main + workers':>26}"
    )
    for backend in backends:
        f = run_backend(backend, corpus_dir, work_root, args.batch)
        print(
            f"{backend:10} {f['messages_per_second']:7.0f} {f['mb_per_second']:6.1f} "
            f"{f['seconds']:7.1f} {f['peak_rss_mb_at_20pct']:10.0f} {f['peak_rss_mb']:6.0f} "
            f"{f['peak_rss_mb_workers']:13.0f} "
            f"{f['cpu_main_ms_per_message']:19.2f} + {f['cpu_workers_ms_per_message']:.2f}"
        )
        print(f"{'':10} peak RSS MB after each tenth: {f['peak_rss_mb_by_tenth']}")


if __name__ == "__main__":
    main()
