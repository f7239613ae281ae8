"""Our IMAP server against Dovecot 2.3: same corpus, same run, same client code.

    .venv/bin/python benchmarks/imap.py [--count 10000] [--duration 10] [--json]

The corpus from benchmarks/ingest.py is loaded into a fresh gateway store (bulk ingest, then
`gateway serve` as a separate process) and into a private Dovecot (Maildir, indexed with doveadm
before timing). Each operation then runs against both servers, alternating between them on every
repetition so drift on this shared-CPU VM hits both alike; the table shows the median. Clients
are one small blocking client (below), used unchanged for both servers. Dovecot is configured
with its default `mail_fsync = optimized` (the test helper turns fsync off), since the gateway's
APPEND is durable.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import queue
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptography.fernet import Fernet  # noqa: E402

from benchmarks.imap_client import PASSWORD, USER, ImapClient, ImapError, fetch_count, search_count  # noqa: E402
from benchmarks.ingest import write_corpus  # noqa: E402
from benchmarks.process_memory import memory_kb, process_tree  # noqa: E402
from benchmarks.workdir import add_location_arguments, clear_and_settle  # noqa: E402
from gateway.settings import Settings  # noqa: E402
from gateway.store import NewMessage, open_store  # noqa: E402
from tests.support.dovecot import DovecotServer, free_port  # noqa: E402

APPEND_MAILBOX = "Appended"
SUBJECT_WORD = "agenda"
TEXT_WORD = "holiday"
READY_TIMEOUT = 120.0


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class BenchDovecot(DovecotServer):
    """The test helper's Dovecot, with limits for 1,000 connections and fsync at its default.

    Passwords are stored with `password_scheme`: ARGON2ID by default, m=64 MiB t=3 as the
    gateway's argon2-cffi defaults (p=1 against our p=4), so that LOGIN compares like for like.
    """

    def __init__(self, work_dir: Path, password_scheme: str) -> None:
        super().__init__(work_dir)
        self.password_scheme = password_scheme

    def add_user(self, name: str, password: str) -> None:
        super().add_user(name, password)
        if self.password_scheme == "PLAIN":
            return
        hashed = self.doveadm("pw", "-s", self.password_scheme, "-p", password).strip()
        lines = self.passwd_path.read_text().splitlines()
        prefix = f"{name}:{{PLAIN}}{password}:"
        lines = [
            f"{name}:{hashed}:" + line[len(prefix) :] if line.startswith(prefix) else line
            for line in lines
        ]
        self.passwd_path.write_text("\n".join(lines) + "\n")

    def _config_text(self) -> str:
        text = super()._config_text()
        replacements = {
            "mail_fsync = never": "mail_fsync = optimized",
            "mail_max_userip_connections = 1000": "mail_max_userip_connections = 4000",
            "service imap {\n  process_limit = 1024\n}": (
                "service imap {\n  process_limit = 2048\n}\n"
                "service imap-login {\n  process_limit = 256\n}"
            ),
        }
        for old, new in replacements.items():
            assert old in text, f"Dovecot config no longer contains {old!r}"
            text = text.replace(old, new)
        return "default_client_limit = 8000\n" + text

    def master_pid(self) -> int:
        return int((self.root / "base" / "master.pid").read_text().split()[0])


@dataclass
class Target:
    name: str
    port: int
    pid: int  # the process whose tree is the server
    client: ImapClient | None = None
    state: dict[str, object] = field(default_factory=dict)

    def connect(self) -> ImapClient:
        return ImapClient(self.port)


def load_gateway(data_dir: Path, files: list[Path], secret_key: str) -> None:
    """Bulk-ingest the corpus into a fresh store, as benchmarks/ingest.py does, then close it."""
    settings = Settings(
        data_dir=data_dir,
        secret_key=secret_key,
        _env_file=None,  # type: ignore[call-arg]
    )
    store = open_store(settings)
    try:
        user = store.create_user(name=USER, password=PASSWORD)
        inbox = store.get_mailbox(user_id=user.id, name="INBOX").id

        def batches() -> Iterator[list[NewMessage]]:
            for start in range(0, len(files), 200):
                yield [NewMessage(inbox, path.read_bytes()) for path in files[start : start + 200]]

        for _ in store.append_message_batches(batches=batches()):
            pass
    finally:
        store.close()


def wait_for_greeting(port: int, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gateway exited early: {log_path.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                if sock.recv(100).startswith(b"* OK"):
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"gateway did not answer on port {port}")


def start_gateway(data_dir: Path, secret_key: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = dict(os.environ)
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "GATEWAY_DATA_DIR": str(data_dir),
            "GATEWAY_IMAP_PORT": str(port),
            "GATEWAY_IMAPS_PORT": "0",
            "GATEWAY_ADMIN_PORT": "0",
            "GATEWAY_SUBMISSION_PORT": "0",
            "GATEWAY_SMTPS_PORT": "0",
            "GATEWAY_ALLOW_PLAINTEXT": "1",
            "GATEWAY_SECRET_KEY": secret_key,
            "GATEWAY_IMAP_CONNECTIONS_PER_ADDRESS": "2000",
            "GATEWAY_IMAP_SESSIONS_PER_USER": "2000",
        }
    )
    log_path = data_dir.parent / "gateway.log"
    with log_path.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve"],
            cwd=data_dir.parent,  # no stray .env from the caller's directory
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    wait_for_greeting(port, process, log_path)
    return process, port


# --- /proc -------------------------------------------------------------------------------


def memory_figures(target: Target) -> dict[str, float]:
    tree = process_tree(target.pid)
    figures = {
        "rss_mb_all_processes": sum(memory_kb(pid, "VmRSS") for pid, _ in tree) / 1024,
        "pss_mb_all_processes": sum(memory_kb(pid, "Pss") for pid, _ in tree) / 1024,
        "processes": float(len(tree)),
    }
    if target.name == "dovecot":
        imap = [pid for pid, name in tree if name == "imap"]
        figures["imap_processes"] = float(len(imap))
        figures["rss_mb_imap_processes"] = sum(memory_kb(pid, "VmRSS") for pid in imap) / 1024
        figures["pss_mb_imap_processes"] = sum(memory_kb(pid, "Pss") for pid in imap) / 1024
    else:
        figures["rss_mb_server_process"] = memory_kb(target.pid, "VmRSS") / 1024
        # RSS = anonymous memory + mapped files (libraries, and the SQLite memory map, whose
        # pages are the page cache that plain reads would fill just the same).
        figures["rss_anon_mb_server_process"] = memory_kb(target.pid, "RssAnon") / 1024
        figures["rss_file_mb_server_process"] = memory_kb(target.pid, "RssFile") / 1024
    return figures


# --- the operations ----------------------------------------------------------------------


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def selected_client(target: Target) -> ImapClient:
    if target.client is None:
        target.client = target.connect()
        target.client.login()
        target.client.command(b"SELECT INBOX")
    return target.client


def op_login_select(target: Target) -> float:
    """Also records LOGIN alone: password hashing differs (argon2 here, {PLAIN} in Dovecot)."""
    client = target.connect()
    try:
        login = timed(client.login)
        select = timed(lambda: client.command(b"SELECT INBOX"))
        target.state.setdefault("login_seconds", []).append(round(login, 4))  # type: ignore[attr-defined]
        target.state.setdefault("select_seconds", []).append(round(select, 4))  # type: ignore[attr-defined]
        return login + select
    finally:
        client.command(b"LOGOUT")
        client.close()


def fetch_all(items: bytes, uid: bool = False) -> Callable[[Target], float]:
    def run(target: Target) -> float:
        client = selected_client(target)
        prefix = b"UID FETCH" if uid else b"FETCH"
        responses: list[bytes] = []
        seconds = timed(lambda: responses.extend(client.command(prefix + b" 1:* " + items)))
        expected = target.state["messages"]
        if fetch_count(responses) != expected:
            raise ImapError(f"{target.name}: {fetch_count(responses)} FETCH, want {expected}")
        return seconds

    return run


def op_body_peek(sequence_numbers: list[int]) -> Callable[[Target], float]:
    def run(target: Target) -> float:
        client = selected_client(target)
        octets = 0

        def fetch_each() -> None:
            nonlocal octets
            for number in sequence_numbers:
                responses = client.command(b"FETCH %d BODY.PEEK[]" % number)
                octets += sum(len(r) for r in responses)

        seconds = timed(fetch_each)
        target.state["body_peek_octets"] = octets
        return seconds

    return run


def op_search(key: bytes) -> Callable[[Target], float]:
    def run(target: Target) -> float:
        client = selected_client(target)
        responses: list[bytes] = []
        seconds = timed(lambda: responses.extend(client.command(b"UID SEARCH " + key)))
        target.state[f"search {key.decode()} hits"] = search_count(responses)
        return seconds

    return run


def op_store_seen(target: Target) -> float:
    client = selected_client(target)
    client.command(b"UID STORE 1:* -FLAGS.SILENT (\\Seen)")  # untimed reset
    responses: list[bytes] = []
    seconds = timed(lambda: responses.extend(client.command(b"UID STORE 1:* +FLAGS (\\Seen)")))
    target.state["store responses"] = fetch_count(responses)
    return seconds


def op_append(messages: list[bytes]) -> Callable[[Target], float]:
    def run(target: Target) -> float:
        client = selected_client(target)

        def append_each() -> None:
            for raw in messages:
                client.command(b"APPEND " + APPEND_MAILBOX.encode(), literal=raw)

        return timed(append_each)

    return run


def small_message(number: int) -> bytes:
    return (
        b"From: idle@example.org\r\nTo: bench@example.org\r\n"
        b"Subject: idle probe %d\r\nMessage-ID: <idle-%d@example.org>\r\n\r\nping\r\n"
        % (number, number)
    )


def measure_idle(target: Target, rounds: int) -> list[float]:
    """Seconds from the appender's tagged OK to the idler's `* n EXISTS`, per round."""
    idler = target.connect()
    idler.login()
    idler.command(b"SELECT INBOX")
    appender = target.connect()
    appender.login()
    arrivals: queue.Queue[float] = queue.Queue()
    tag = idler.send_command(b"IDLE")
    if not idler.read_line().startswith(b"+"):
        raise ImapError(f"{target.name}: IDLE not accepted")

    def listen() -> None:
        seen = 0
        while seen < rounds:
            line = idler.read_line()
            if line.startswith(b"* ") and line.rstrip().endswith(b" EXISTS"):
                arrivals.put(time.perf_counter())
                seen += 1

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    latencies: list[float] = []
    for number in range(rounds):
        time.sleep(0.1)
        appender.command(b"APPEND INBOX", literal=small_message(number))
        acknowledged = time.perf_counter()
        try:
            latencies.append(arrivals.get(timeout=30) - acknowledged)
        except queue.Empty:
            raise ImapError(f"{target.name}: no EXISTS within 30 s of APPEND") from None
    listener.join(10)
    idler.sock.sendall(b"DONE\r\n")
    idler.read_until_tagged(tag)
    for client in (idler, appender):
        client.command(b"LOGOUT")
        client.close()
    target.state["messages"] = int(target.state["messages"]) + rounds  # type: ignore[call-overload]
    return latencies


def concurrent_worker(
    port: int, duration: float, barrier: multiprocessing.synchronize.Barrier, results: object
) -> None:
    client = ImapClient(port)
    client.login()
    barrier.wait()
    deadline = time.perf_counter() + duration
    operations = 0
    while time.perf_counter() < deadline:
        client.command(b"SELECT INBOX")
        client.command(b"FETCH 1:* (FLAGS)")
        operations += 1
    results.put(operations)  # type: ignore[attr-defined]
    client.command(b"LOGOUT")
    client.close()


def measure_concurrency(target: Target, clients: int, duration: float) -> float:
    """Total SELECT+FETCH FLAGS loops per second over `clients` client processes."""
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(clients + 1)
    results = context.Queue()
    workers = [
        context.Process(target=concurrent_worker, args=(target.port, duration, barrier, results))
        for _ in range(clients)
    ]
    for worker in workers:
        worker.start()
    barrier.wait(timeout=120)
    started = time.perf_counter()
    total = sum(results.get(timeout=duration + 300) for _ in workers)
    elapsed = time.perf_counter() - started
    for worker in workers:
        worker.join(30)
        if worker.exitcode != 0:
            raise ImapError(f"{target.name}: a concurrent client failed ({worker.exitcode})")
    return total / max(elapsed, duration)


def measure_idle_connections(target: Target, count: int) -> dict[str, float]:
    """Open `count` connections that LOGIN and SELECT INBOX, then read server memory."""
    before = memory_figures(target)
    connections: list[ImapClient] = []
    started = time.perf_counter()
    try:
        for start in range(0, count, 50):
            batch = [target.connect() for _ in range(min(50, count - start))]
            connections.extend(batch)
            tags = [
                (c, c.send_command(b'LOGIN "%s" "%s"' % (USER.encode(), PASSWORD.encode())))
                for c in batch
            ]
            tags += [(c, c.send_command(b"SELECT INBOX")) for c in batch]
            for client, tag in tags:
                client.read_until_tagged(tag)
        opened = time.perf_counter() - started
        time.sleep(2)
        after = memory_figures(target)
    finally:
        for client in connections:
            client.close()
    return {"before": before, "with": after, "seconds_to_open": opened}  # type: ignore[dict-item]


# --- the run -----------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    samples: dict[str, list[float]] = field(default_factory=dict)

    def median(self, server: str) -> float:
        return statistics.median(self.samples[server])


def compare(
    targets: list[Target], name: str, action: Callable[[Target], float], repeat: int
) -> Row:
    row = Row(name, {t.name: [] for t in targets})
    for _ in range(repeat):
        for target in targets:
            row.samples[target.name].append(action(target))
    log(f"  {name}: " + ", ".join(f"{t.name} {row.median(t.name):.4f} s" for t in targets))
    return row


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def run_benchmark(args: argparse.Namespace) -> dict[str, object]:
    corpus_dir = args.corpus_dir / f"{args.count}-{args.seed}"
    corpus_dir.mkdir(parents=True, exist_ok=True)
    count, total = write_corpus(corpus_dir, args.count, args.seed)
    files = sorted(corpus_dir.glob("*.eml"))
    log(f"corpus: {count} messages, {total / 1e6:.1f} MB in {corpus_dir}")

    work = args.work_dir
    clear_and_settle(work)
    (work / "gateway-data").mkdir()
    secret_key = Fernet.generate_key().decode()
    started = time.perf_counter()
    load_gateway(work / "gateway-data", files, secret_key)
    log(f"gateway: ingested in {time.perf_counter() - started:.1f} s")

    dovecot = BenchDovecot(work, args.dovecot_password_scheme)
    gateway_process: subprocess.Popen[bytes] | None = None
    try:
        dovecot.start()
        dovecot.add_user(USER, PASSWORD)
        started = time.perf_counter()
        dovecot.load_maildir(USER, "INBOX", (path.read_bytes() for path in files))
        dovecot.doveadm("index", "-u", USER, "INBOX")
        log(f"dovecot: loaded and indexed in {time.perf_counter() - started:.1f} s")
        gateway_process, gateway_port = start_gateway(work / "gateway-data", secret_key)
        targets = [
            Target("gateway", gateway_port, gateway_process.pid),
            Target("dovecot", dovecot.imap_port, dovecot.master_pid()),
        ]
        for target in targets:
            target.state["messages"] = count
            selected_client(target).command(b"CREATE " + APPEND_MAILBOX.encode())
        return measure_all(args, targets, files)
    finally:
        if gateway_process is not None:
            gateway_process.send_signal(signal.SIGTERM)
            try:
                gateway_process.wait(30)
            except subprocess.TimeoutExpired:
                gateway_process.kill()
        dovecot.stop()


def measure_all(
    args: argparse.Namespace, targets: list[Target], files: list[Path]
) -> dict[str, object]:
    rng = random.Random(args.seed)
    count = len(files)
    peek_numbers = rng.sample(range(1, count + 1), min(500, count))
    append_messages = [files[i].read_bytes() for i in rng.sample(range(count), min(500, count))]
    repeat = args.repeat
    rows = [
        compare(targets, "LOGIN + SELECT INBOX", op_login_select, repeat + 2),
        compare(targets, "UID FETCH 1:* (UID FLAGS)", fetch_all(b"(UID FLAGS)", uid=True), repeat),
        compare(targets, "FETCH 1:* (ENVELOPE)", fetch_all(b"(ENVELOPE)"), repeat),
        compare(targets, "FETCH 1:* (BODYSTRUCTURE)", fetch_all(b"(BODYSTRUCTURE)"), repeat),
        compare(targets, "500 x FETCH n BODY.PEEK[]", op_body_peek(peek_numbers), repeat),
        compare(
            targets,
            f"UID SEARCH SUBJECT {SUBJECT_WORD}",
            op_search(b"SUBJECT " + SUBJECT_WORD.encode()),
            repeat,
        ),
        compare(
            targets,
            f"UID SEARCH TEXT {TEXT_WORD}",
            op_search(b"TEXT " + TEXT_WORD.encode()),
            repeat,
        ),
        compare(targets, "UID STORE 1:* +FLAGS (\\Seen)", op_store_seen, repeat),
        compare(targets, "500 x APPEND (LITERAL+)", op_append(append_messages), repeat),
    ]
    log("  IDLE latency ...")
    idle = {t.name: measure_idle(t, args.idle_rounds) for t in targets}
    log(f"  {args.clients} concurrent clients, {args.duration:.0f} s each ...")
    throughput = {t.name: measure_concurrency(t, args.clients, args.duration) for t in targets}
    rows.append(
        Row(
            f"{args.clients} clients SELECT+FETCH 1:* (FLAGS), s/op",
            {name: [1 / ops] for name, ops in throughput.items()},
        )
    )
    for target in targets:
        if target.client is not None:
            target.client.command(b"LOGOUT")
            target.client.close()
            target.client = None
    log(f"  {args.connections} idle connections ...")
    memory = {t.name: measure_idle_connections(t, args.connections) for t in targets}
    return {
        "count": count,
        "corpus_bytes": sum(path.stat().st_size for path in files),
        "operations": [
            {
                "operation": row.name,
                "gateway_seconds": row.median("gateway"),
                "dovecot_seconds": row.median("dovecot"),
                "ratio": row.median("gateway") / row.median("dovecot"),
                "samples": row.samples,
            }
            for row in rows
        ],
        "concurrent_ops_per_second": throughput,
        "idle_latency_seconds": {
            name: {
                "median": statistics.median(values),
                "p90": percentile(values, 0.9),
                "max": max(values),
                "samples": values,
            }
            for name, values in idle.items()
        },
        "idle_connections": args.connections,
        "memory": memory,
        "checks": {t.name: t.state for t in targets},
    }


def print_report(result: dict[str, object], args: argparse.Namespace) -> None:
    """The human-readable table: to stdout, or to stderr when stdout carries --json."""
    out = sys.stderr if args.json else sys.stdout

    def emit(text: str) -> None:
        out.write(text + "\n")

    operations: list[dict[str, float]] = result["operations"]  # type: ignore[assignment]
    emit(f"corpus: {result['count']} messages, {result['corpus_bytes'] / 1e6:.0f} MB")  # type: ignore[operator]
    emit(f"{'operation':44} {'gateway s':>10} {'Dovecot s':>10} {'ratio':>6}  first run g / d")
    for op in operations:
        samples: dict[str, list[float]] = op["samples"]  # type: ignore[assignment]
        flag = "  > 2x" if op["ratio"] > 2 else ""
        emit(
            f"{op['operation']:44} {op['gateway_seconds']:10.4f} {op['dovecot_seconds']:10.4f} "
            f"{op['ratio']:6.2f}  {samples['gateway'][0]:.4f} / {samples['dovecot'][0]:.4f}{flag}"
        )
    throughput: dict[str, float] = result["concurrent_ops_per_second"]  # type: ignore[assignment]
    emit(
        f"{args.clients} concurrent clients, SELECT+FETCH FLAGS loops/s: "
        f"gateway {throughput['gateway']:.1f}, Dovecot {throughput['dovecot']:.1f}"
    )
    idle: dict[str, dict[str, float]] = result["idle_latency_seconds"]  # type: ignore[assignment]
    for name, figures in idle.items():
        emit(
            f"IDLE notification, {name}: median {figures['median'] * 1000:.1f} ms, "
            f"p90 {figures['p90'] * 1000:.1f} ms, max {figures['max'] * 1000:.1f} ms "
            f"({args.idle_rounds} rounds)"
        )
    memory: dict[str, dict[str, dict[str, float]]] = result["memory"]  # type: ignore[assignment]
    g, d = memory["gateway"], memory["dovecot"]
    emit(
        f"memory, {args.connections} idle connections (LOGIN + SELECT INBOX): gateway process RSS "
        f"{g['before']['rss_mb_server_process']:.0f} MB before, "
        f"{g['with']['rss_mb_server_process']:.0f} MB with them (anonymous "
        f"{g['with']['rss_anon_mb_server_process']:.0f} MB, mapped files "
        f"{g['with']['rss_file_mb_server_process']:.0f} MB)"
    )
    emit(
        f"  Dovecot forks one imap process per connection; sum over its "
        f"{d['with']['imap_processes']:.0f} imap processes: RSS "
        f"{d['with']['rss_mb_imap_processes']:.0f} MB, PSS {d['with']['pss_mb_imap_processes']:.0f}"
        f" MB; whole Dovecot process tree: RSS {d['with']['rss_mb_all_processes']:.0f} MB, "
        f"PSS {d['with']['pss_mb_all_processes']:.0f} MB"
    )
    checks: dict[str, dict[str, object]] = result["checks"]  # type: ignore[assignment]
    for name, state in checks.items():
        login: list[float] = state["login_seconds"]  # type: ignore[assignment]
        select: list[float] = state["select_seconds"]  # type: ignore[assignment]
        emit(
            f"LOGIN + SELECT split, {name}: LOGIN {statistics.median(login):.4f} s, "
            f"SELECT INBOX {statistics.median(select):.4f} s (medians)"
        )
    for name, state in checks.items():
        emit(f"checks, {name}: {state}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of each operation")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of the 20-client run")
    parser.add_argument("--idle-rounds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument(
        "--json", action="store_true", help="print JSON on stdout (the table goes to stderr)"
    )
    parser.add_argument(
        "--dovecot-password-scheme",
        default="ARGON2ID",
        help="Dovecot passdb scheme (ARGON2ID like the gateway; PLAIN as the test helper)",
    )
    add_location_arguments(parser, "imap", "the gateway data directory and Dovecot")
    args = parser.parse_args()
    args.work_dir = args.work_dir / "imap"
    result = run_benchmark(args)
    print_report(result, args)
    if args.json:
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
