"""Sending: the gateway's submission + relay against Postfix, both relaying to `smtp-sink`.

    .venv/bin/python benchmarks/smtp.py [--count 5000] [--sessions 10] [--json]

One asyncio load client (below) sends the same messages (seeded sizes from a few KB to 1 MB)
over 10 sessions, first through (a) a Postfix 3.7 from a temp dir (recipe:
/work/shared/peers/postfix.md) that accepts from loopback and relays to an `smtp-sink`, then
through (b) `gateway serve` with AUTH PLAIN, relaying to another `smtp-sink`. Neither side
uses TLS (the gateway with GATEWAY_ALLOW_PLAINTEXT=1, loopback only), so both do the same
protocol work. Both make every message durable before its 250 (Postfix fsyncs its queue
file; the gateway fsyncs the blob and commits its queue row).

Reported per server: accepted msg/s (messages / time from the first MAIL to the last 250),
p50/p95 latency from the end of DATA (the final dot written) to the 250, delivered msg/s
(messages / time from the start until the sink has counted them all), and peak RSS (the sum
over the server's processes, sampled every 50 ms; for the gateway the one process's VmHWM).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptography.fernet import Fernet  # noqa: E402

from benchmarks.process_memory import memory_kb, process_tree  # noqa: E402
from gateway.settings import Settings  # noqa: E402
from gateway.store import open_store  # noqa: E402
from tests.support.dovecot import free_port  # noqa: E402

SENDER = "alice@example.org"
USER, PASSWORD = "alice", "alice-bench-pw"
READY_TIMEOUT = 60.0
DELIVERY_TIMEOUT = 900.0


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --- the messages ------------------------------------------------------------------------


def message_size(index: int) -> int:
    """Seeded sizes: 70 % 2-20 KB, 25 % 20-200 KB, 5 % 200 KB-1 MB."""
    rng = random.Random(index)
    roll = rng.random()
    if roll < 0.70:
        return rng.randrange(2_000, 20_000)
    if roll < 0.95:
        return rng.randrange(20_000, 200_000)
    return rng.randrange(200_000, 1_000_000)


def make_message(index: int) -> bytes:
    """Message `index`: headers, a text part, base64 lines up to its size (no line starts
    with a dot, so the client needs no dot-stuffing)."""
    rng = random.Random(index)
    header = (
        f"From: Alice <{SENDER}>\r\nTo: <bob{index % 50}@example.net>\r\n"
        f"Subject: benchmark message {index}\r\nMessage-ID: <bench-{index}@example.org>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
    ).encode()
    size = message_size(index)
    chunk = base64.b64encode(rng.randbytes(57 * 64)).replace(b"\n", b"")
    lines = [chunk[i : i + 76] + b"\r\n" for i in range(0, len(chunk), 76)]
    body = bytearray()
    while len(header) + len(body) < size:
        body += lines[len(body) // 78 % len(lines)]
    return header + bytes(body)


# --- the load client ---------------------------------------------------------------------


class SmtpLoadError(RuntimeError):
    pass


@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0


async def _reply(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    while True:
        line = await reader.readline()
        if not line:
            raise SmtpLoadError("connection closed")
        if line[3:4] != b"-":
            return int(line[:3]), line


async def _command(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, line: bytes, expect: int
) -> None:
    writer.write(line + b"\r\n")
    code, text = await _reply(reader)
    if code != expect:
        raise SmtpLoadError(f"{line!r}: {text!r}")


async def _session(
    port: int, work: asyncio.Queue[int], result: LoadResult, auth: bool, messages: list[bytes]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        code, text = await _reply(reader)
        if code != 220:
            raise SmtpLoadError(f"greeting: {text!r}")
        await _command(reader, writer, b"EHLO load.test", 250)
        if auth:
            token = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode())
            await _command(reader, writer, b"AUTH PLAIN " + token, 235)
        while True:
            try:
                index = work.get_nowait()
            except asyncio.QueueEmpty:
                break
            await _command(reader, writer, f"MAIL FROM:<{SENDER}>".encode(), 250)
            await _command(reader, writer, f"RCPT TO:<bob{index % 50}@example.net>".encode(), 250)
            await _command(reader, writer, b"DATA", 354)
            writer.write(messages[index])
            writer.write(b".\r\n")
            await writer.drain()
            sent = time.perf_counter()
            code, text = await _reply(reader)
            if code != 250:
                raise SmtpLoadError(f"end of DATA: {text!r}")
            result.latencies.append(time.perf_counter() - sent)
        await _command(reader, writer, b"QUIT", 221)
    finally:
        writer.close()


async def send_all(port: int, messages: list[bytes], sessions: int, auth: bool) -> LoadResult:
    work: asyncio.Queue[int] = asyncio.Queue()
    for index in range(len(messages)):
        work.put_nowait(index)
    result = LoadResult(started=time.perf_counter())
    await asyncio.gather(*(_session(port, work, result, auth, messages) for _ in range(sessions)))
    result.finished = time.perf_counter()
    return result


# --- peers ---------------------------------------------------------------------------------


class Sink:
    """`smtp-sink -c`: counts the messages it has taken (cumulative, in its output)."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.output = directory / f"sink-{self.port}.out"
        self._file = self.output.open("wb")
        self.process = subprocess.Popen(
            ["smtp-sink", "-u", "nobody", "-c", f"127.0.0.1:{self.port}", "256"],
            stdout=self._file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def messages(self) -> int:
        text = self.output.read_bytes().replace(b"\r", b"\n")
        found = text.rsplit(b"mesg=", 1)
        return int(found[1].split()[0]) if len(found) == 2 else 0

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        self._file.close()


def wait_for_port(port: int, timeout: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


class PeakMemory:
    """Samples the summed RSS of a process tree every 50 ms; `peak_kb` after `stop()`."""

    def __init__(self, root_pid: Callable[[], int]) -> None:
        self._root_pid = root_pid
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            total = sum(memory_kb(pid, "VmRSS") for pid, _ in process_tree(self._root_pid()))
            self.peak_kb = max(self.peak_kb, total)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


class Postfix:
    """The recipe's instance: accepts from 127.0.0.0/8, relays everything to `relay_port`."""

    def __init__(self, directory: Path, relay_port: int) -> None:
        self.dir = directory
        self.port = free_port()
        # User postfix must traverse every directory down to its queue (mktemp makes 0700).
        directory.parent.chmod(0o755)
        directory.mkdir()
        directory.chmod(0o755)
        (directory / "conf").mkdir()
        (directory / "queue").mkdir()
        (directory / "conf" / "main.cf").write_text(
            f"""compatibility_level = 3.6
queue_directory = {directory}/queue
data_directory = {directory}/data
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
maillog_file = {directory}/maillog
maillog_file_prefixes = {directory}
myhostname = postfix-bench.test
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
mydestination =
alias_maps =
alias_database =
local_recipient_maps =
relayhost = [127.0.0.1]:{relay_port}
message_size_limit = 20480000
"""
        )
        services = [
            f"127.0.0.1:{self.port}  inet  n - n - - smtpd",
            "pickup unix n - n 60 1 pickup",
            "cleanup unix n - n - 0 cleanup",
            "qmgr unix n - n 300 1 qmgr",
            "rewrite unix - - n - - trivial-rewrite",
            "bounce unix - - n - 0 bounce",
            "defer unix - - n - 0 bounce",
            "trace unix - - n - 0 bounce",
            "verify unix - - n - 1 verify",
            "flush unix n - n 1000? 0 flush",
            "proxymap unix - - n - - proxymap",
            "proxywrite unix - - n - 1 proxymap",
            "smtp unix - - n - - smtp",
            "relay unix - - n - - smtp",
            "showq unix n - n - - showq",
            "error unix - - n - - error",
            "retry unix - - n - - error",
            "discard unix - - n - - discard",
            "anvil unix - - n - 1 anvil",
            "scache unix - - n - 1 scache",
            "postlog unix-dgram n - n - 1 postlogd",
        ]
        (directory / "conf" / "master.cf").write_text("\n".join(services) + "\n")
        subprocess.run(["postfix", "-c", str(directory / "conf"), "start"], check=True)
        wait_for_port(self.port)

    def master_pid(self) -> int:
        return int((self.dir / "queue" / "pid" / "master.pid").read_text().split()[0])

    def stop(self) -> None:
        subprocess.run(["postfix", "-c", str(self.dir / "conf"), "stop"], check=False)


class Gateway:
    """`gateway serve` with user alice, whose identity relays to `relay_port` (no TLS)."""

    def __init__(self, directory: Path, relay_port: int) -> None:
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        self.env.update(
            GATEWAY_DATA_DIR=str(directory / "data"),
            GATEWAY_SECRET_KEY=Fernet.generate_key().decode(),
            GATEWAY_SUBMISSION_PORT=str(self.port),
            GATEWAY_SMTPS_PORT="0",
            GATEWAY_IMAP_PORT="0",
            GATEWAY_IMAPS_PORT="0",
            GATEWAY_ADMIN_PORT="0",
            GATEWAY_FETCH_ENABLED="0",
            GATEWAY_ALLOW_PLAINTEXT="1",
            GATEWAY_SMTP_HOSTNAME="gateway-bench.test",
            GATEWAY_LOG_LEVEL="WARNING",
        )
        settings = Settings(
            data_dir=directory / "data",
            secret_key=self.env["GATEWAY_SECRET_KEY"],
            _env_file=None,  # type: ignore[call-arg]
        )
        store = open_store(settings)
        try:
            user = store.create_user(name=USER, password=PASSWORD)
            store.add_identity(
                user_id=user.id,
                address=SENDER,
                relay_host="127.0.0.1",
                relay_port=relay_port,
                relay_security="none",
                relay_username="",
                relay_options={"allow_plaintext": True},
                save_to_source_sent=False,
            )
        finally:
            store.close()
        self.settings = settings
        self.process = subprocess.Popen(
            [str(Path(sys.executable).with_name("gateway")), "serve"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=(directory / "serve.log").open("wb"),
        )
        wait_for_port(self.port)

    def peak_kb(self) -> int:
        return memory_kb(self.process.pid, "VmHWM")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(60)


# --- one run -------------------------------------------------------------------------------


@dataclass
class Figures:
    server: str
    count: int
    accepted_per_s: float
    p50_ms: float
    p95_ms: float
    delivered_per_s: float
    peak_rss_mb: float
    load_average: float


def measure(
    name: str,
    port: int,
    sink: Sink,
    messages: list[bytes],
    sessions: int,
    auth: bool,
    peak: Callable[[], int],
) -> Figures:
    before = sink.messages()
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    result = asyncio.run(send_all(port, messages, sessions, auth))
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while sink.messages() - before < len(messages):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name}: only {sink.messages() - before} delivered")
        time.sleep(0.02)
    delivered_at = time.perf_counter()
    latencies = sorted(result.latencies)
    return Figures(
        server=name,
        count=len(messages),
        accepted_per_s=len(messages) / (result.finished - started),
        p50_ms=statistics.median(latencies) * 1000,
        p95_ms=latencies[int(len(latencies) * 0.95) - 1] * 1000,
        delivered_per_s=len(messages) / (delivered_at - started),
        peak_rss_mb=peak() / 1024,
        # The 1-minute load average, mean of before and after: the machine is shared.
        load_average=(load_before + os.getloadavg()[0]) / 2,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--only", choices=("postfix", "gateway"))
    args = parser.parse_args()
    for tool in ("postfix", "smtp-sink"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing: install the Debian package postfix")
    log(f"generating {args.count} messages ...")
    messages = [make_message(i) for i in range(args.count)]
    total = sum(map(len, messages))
    log(f"{total / 1e6:.0f} MB, median {statistics.median(map(len, messages)) / 1e3:.0f} KB")
    figures: list[Figures] = []
    with tempfile.TemporaryDirectory(prefix="gw-smtp-bench-") as scratch:
        root = Path(scratch)
        if args.only != "gateway":
            sink = Sink(root)
            postfix = Postfix(root / "postfix", sink.port)
            memory = PeakMemory(postfix.master_pid)
            try:
                log("postfix ...")
                figures.append(
                    measure(
                        "postfix",
                        postfix.port,
                        sink,
                        messages,
                        args.sessions,
                        False,
                        lambda: memory.peak_kb,
                    )
                )
            finally:
                memory.stop()
                postfix.stop()
                sink.stop()
        if args.only != "postfix":
            sink = Sink(root)
            gateway = Gateway(root / "gateway", sink.port)
            try:
                log("gateway ...")
                figures.append(
                    measure(
                        "gateway",
                        gateway.port,
                        sink,
                        messages,
                        args.sessions,
                        True,
                        gateway.peak_kb,
                    )
                )
            finally:
                gateway.stop()
                sink.stop()
    if args.json:
        print(json.dumps([f.__dict__ for f in figures], indent=2))
        return
    print(f"{args.count} messages, {total / 1e6:.0f} MB, {args.sessions} sessions")
    print(
        "| server | accepted msg/s | p50 ms | p95 ms | delivered msg/s | peak RSS MB | load avg |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for f in figures:
        print(
            f"| {f.server} | {f.accepted_per_s:.0f} | {f.p50_ms:.1f} | {f.p95_ms:.1f} | "
            f"{f.delivered_per_s:.0f} | {f.peak_rss_mb:.0f} | {f.load_average:.1f} |"
        )
    if len(figures) == 2:
        postfix, gateway = figures
        print(
            f"gateway / Postfix: accepted {gateway.accepted_per_s / postfix.accepted_per_s:.2f}x, "
            f"delivered {gateway.delivered_per_s / postfix.delivered_per_s:.2f}x"
        )


if __name__ == "__main__":
    main()
