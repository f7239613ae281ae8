"""The gateway's initial sync against getmail6, fetchmail and mbsync: same Dovecot, same mail.

    .venv/bin/python benchmarks/fetch.py [--count 10000] [--corpus mixed|everyday]
                                         [--only pop3|imap] [--skip-peers] [--peers mbsync]
                                         [--repeat 3] [--push] [--idle-sources 1000]
                                         [--skip-sync]

--corpus everyday is shaped like an everyday mailbox (median ~5 KB, a long tail of
attachments up to ~10 MB: benchmarks/everyday_corpus.py); the default is the mixed one below.
`gateway sync` is timed as a user runs it, one process from start to exit on a fresh data
directory; the search-text fill it leaves for later is then timed the same way (`gateway
index`), and each row also gives the rate with it counted in. --repeat runs every tool again
per round (ratios compare rows of one round); $GATEWAY_BENCH_BASELINE=/path/to/checkout adds
a "baseline" row per protocol that runs that checkout's gateway, to measure a change against
its base in the same run.

The corpus of benchmarks/ingest.py (every 40th message malformed) is written once into a
private Dovecot; every run gets its own account whose Maildir hard-links those files, so no tool
sees another's state and the page cache is equally warm for all. Each account is opened once
(POP3 LIST and UIDL, IMAP FETCH of sizes) before its run, so Dovecot's first-open indexing is
not charged to whichever client happens to come first, and dirty pages are flushed (sync(2)).

Every tool, `gateway sync` included, runs under a small wrapper (this script in --measure mode)
that is the subreaper of the tool's process tree: it times the run, samples the tree's summed
RSS every 50 ms, and reads the tree's CPU time (RUSAGE_CHILDREN) once everything is reaped.
Each row also shows the CPU every other process used meanwhile, to tell a quiet run from a
shared one. Peers deliver into a Maildir: getmail6 and mbsync themselves, fetchmail through
maildrop (fetchmail has no Maildir delivery of its own); all three fsync each message file.
Every row counts the messages actually stored against those on the server.

--push and --idle-sources need the scheduler and push watchers in `gateway serve`; they check
that the modules import and that `gateway serve` really fetches, and say "not available"
otherwise. A protocol `gateway sync` has no engine for is reported as "engine not available".
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import imaplib
import importlib
import json
import os
import poplib
import queue
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptography.fernet import Fernet  # noqa: E402

from benchmarks.everyday_corpus import MALFORMED_EVERY as EVERYDAY_MALFORMED_EVERY  # noqa: E402
from benchmarks.everyday_corpus import write_everyday_corpus  # noqa: E402
from benchmarks.imap import BenchDovecot, percentile, start_gateway  # noqa: E402
from benchmarks.imap_client import ImapClient, ImapError  # noqa: E402
from benchmarks.ingest import MALFORMED_EVERY, write_corpus  # noqa: E402
from benchmarks.workdir import add_location_arguments, clear_and_settle  # noqa: E402
from gateway.settings import Settings  # noqa: E402
from gateway.store import MailStore, open_store  # noqa: E402
from tests.support.dovecot import MAIL_USER  # noqa: E402

PASSWORD = "fetch-bench-pw"
GATEWAY_USER = "bench"
SOURCE_OPTIONS = {"allow_plaintext": True, "timeout_seconds": 60}
PEERS = {"pop3": ["getmail6", "fetchmail"], "imap": ["getmail6", "fetchmail", "mbsync"]}
BINARIES = {"getmail6": "getmail", "fetchmail": "fetchmail", "mbsync": "mbsync"}
GETMAIL_TIMEOUT = 30  # getmail6's socket timeout, also how long it waits for a lost child
GETMAIL_RACE = "timed out"
ENGINE_MISSING = "reason=engine_not_built_yet"  # gateway/sync_pass.py, protocol without engine
PUSH_MODULES = ("gateway.fetch.push", "gateway.fetch.scheduler")
SAMPLE_SECONDS = 0.05
ORPHAN_GRACE_SECONDS = 30.0
FIRST_FETCH_TIMEOUT = 90.0  # `gateway serve` with a scheduler starts syncing at once
PR_SET_CHILD_SUBREAPER = 36
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --- /proc: process trees, RSS and CPU ----------------------------------------------------


def descendants(root: int) -> list[int]:
    """Every live descendant of `root`, read from each thread's /proc children list."""
    found: list[int] = []
    pending = [root]
    while pending:
        pid = pending.pop()
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                children = Path(f"/proc/{pid}/task/{task}/children").read_text().split()
            except OSError:
                continue
            found.extend(int(child) for child in children)
            pending.extend(int(child) for child in children)
    return found


def rss_kb(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KB
    except (OSError, IndexError, ValueError):
        return 0


def rss_and_peak_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) in kB; VmHWM is the peak since the process's last exec."""
    rss = peak = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                peak = int(line.split()[1])
    except OSError:
        pass
    return rss, peak


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process and of the children it has reaped."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return sum(int(value) for value in fields[11:15]) / CLOCK_TICKS


def tree_cpu_seconds(root: int) -> float:
    return sum(cpu_seconds(pid) for pid in [root, *descendants(root)])


def busy_cpu_seconds() -> float:
    """CPU time every core has spent busy since boot (/proc/stat: all but idle and iowait)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / CLOCK_TICKS


def tree_rss_mb(root: int) -> float:
    return sum(rss_kb(pid) for pid in [root, *descendants(root)]) / 1024


# --- the measuring wrapper (a child of the benchmark, the parent of one tool) ---------------


@dataclass(frozen=True)
class Usage:
    """What the wrapper saw of one tool's whole process tree."""

    exit_code: int
    seconds: float
    cpu_seconds: float
    peak_tree_rss_mb: float  # summed over the tree, sampled every SAMPLE_SECONDS
    # The largest VmHWM seen while sampling. Not RUSAGE_CHILDREN's ru_maxrss: Linux carries a
    # process's peak across exec, so that would count the wrapper's own memory, copied by fork.
    peak_process_rss_mb: float


def measure_command(log_path: Path, user: str | None, argv: list[str]) -> None:
    """--measure mode: run `argv` (as `user`) as the subreaper of its tree, print its Usage."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")
    me = os.getpid()
    peak_tree_kb = peak_process_kb = 0
    finished = threading.Event()

    def sample() -> None:
        nonlocal peak_tree_kb, peak_process_kb
        while not finished.wait(SAMPLE_SECONDS):
            figures = [rss_and_peak_kb(pid) for pid in descendants(me)]
            peak_tree_kb = max(peak_tree_kb, sum(rss for rss, _ in figures))
            peak_process_kb = max(peak_process_kb, *(peak for _, peak in figures), 0)

    sampler = threading.Thread(target=sample, daemon=True)
    with log_path.open("wb") as output:
        started = time.perf_counter()
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            user=user,
            group=user,
            extra_groups=[] if user else None,
        )
        sampler.start()
        exit_code = process.wait()
        seconds = time.perf_counter() - started
    finished.set()
    sampler.join()
    reap_orphans(me)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    figures = Usage(
        exit_code=exit_code,
        seconds=seconds,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        peak_tree_rss_mb=peak_tree_kb / 1024,
        peak_process_rss_mb=peak_process_kb / 1024,
    )
    print(json.dumps(asdict(figures)))


def reap_orphans(me: int) -> None:
    """Wait for processes the tool left behind (e.g. a forkserver), so their CPU is counted."""
    deadline = time.monotonic() + ORPHAN_GRACE_SECONDS
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid:
            continue
        if time.monotonic() > deadline:
            log(f"measure: killing processes left {ORPHAN_GRACE_SECONDS:.0f} s after the tool")
            for straggler in descendants(me):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(straggler, signal.SIGKILL)
            deadline = time.monotonic() + ORPHAN_GRACE_SECONDS
        time.sleep(0.02)


def run_measured(argv: list[str], env: dict[str, str], directory: Path, user: str | None) -> Usage:
    log_path = str(directory / "tool.log")
    command = [sys.executable, __file__, "--measure", log_path, user or "-", "--", *argv]
    output = subprocess.run(
        command, cwd=directory, env=env, check=True, capture_output=True, text=True
    ).stdout
    return Usage(**json.loads(output.strip().splitlines()[-1]))


# --- Dovecot accounts -----------------------------------------------------------------------


class Accounts:
    """Dovecot accounts with identical mail: a template written once, clones by hard link."""

    def __init__(self, dovecot: BenchDovecot) -> None:
        self.dovecot = dovecot
        self._passwd_written = 0.0

    def add_user(self, name: str) -> None:
        self.dovecot.add_user(name, PASSWORD)
        self._passwd_written = time.monotonic()

    def wait_until_usable(self) -> None:
        """Dovecot's passwd-file driver re-reads the file at most once a second, so a user
        added in the second of its last read is unknown until the clock moves on."""
        time.sleep(max(0.0, self._passwd_written + 1.1 - time.monotonic()))

    def load_template(self, name: str, messages: Iterable[bytes]) -> None:
        self.add_user(name)
        self.wait_until_usable()  # doveadm looks the user up too
        self.dovecot.load_maildir(name, "INBOX", messages)

    def clone(self, template: str, name: str) -> None:
        dovecot = self.dovecot
        self.add_user(name)
        source, target = dovecot.maildir_path(template), dovecot.maildir_path(name)
        for sub in ("", "cur", "new", "tmp"):
            (target / sub).mkdir(parents=True, exist_ok=True)
            os.chown(target / sub, dovecot.uid, dovecot.gid)
        for entry in os.scandir(source / "cur"):
            os.link(entry.path, target / "cur" / entry.name)

    def warm(self, name: str) -> None:
        """Open the account once by POP3 and IMAP: Dovecot indexes it and caches sizes."""
        self.wait_until_usable()
        pop = poplib.POP3("127.0.0.1", self.dovecot.pop3_port, timeout=600)
        pop.user(name)
        pop.pass_(PASSWORD)
        pop.list()
        pop.uidl()
        pop.quit()
        imap = imaplib.IMAP4("127.0.0.1", self.dovecot.imap_port, timeout=600)
        imap.login(name, PASSWORD)
        imap.select("INBOX", readonly=True)
        imap.uid("FETCH", "1:*", "(FLAGS RFC822.SIZE INTERNALDATE)")
        imap.logout()


def small_message(number: int) -> bytes:
    return (
        f"From: Push Bench <push@example.org>\r\nTo: bench@example.org\r\n"
        f"Subject: push {number}\r\nMessage-ID: <push-{number}-{time.time_ns()}@example.org>\r\n"
        f"Date: Mon, 02 Nov 2026 10:00:00 +0000\r\n\r\nMessage {number}.\r\n"
    ).encode()


# --- the tools ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    tool: str
    protocol: str
    directory: Path
    account: str
    port: int


@dataclass(frozen=True)
class Prepared:
    argv: list[str]
    env: dict[str, str]
    count_stored: Callable[[], int]
    # Peers run as Dovecot's unprivileged mail user: getmail6 refuses to deliver as root and
    # fetchmail warns. The gateway runs as root, as in the other benchmarks: the venv's
    # interpreter lives under /root here, which other users cannot reach.
    user: str | None = None
    # Work the tool leaves for later (the search-text fill), done and timed after its row.
    afterwards: Callable[[], Usage] | None = None


def child_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("GATEWAY_")}
    env.update(extra)
    return env


def maildir_count(path: Path) -> int:
    return sum(len(os.listdir(path / sub)) for sub in ("cur", "new") if (path / sub).is_dir())


def make_maildir(path: Path) -> Path:
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    return path


def gateway_settings(data_dir: Path, secret_key: str) -> Settings:
    return Settings(
        data_dir=data_dir,
        secret_key=secret_key,
        ingest_workers=0,  # the benchmark's own store only sets up and counts
        _env_file=None,  # type: ignore[call-arg]
    )


def gateway_inbox_count(store: MailStore, user: str) -> int:
    user_id = store.get_user(name=user).id
    inbox = store.get_mailbox(user_id=user_id, name="INBOX").id
    return store.mailbox_status(mailbox_id=inbox).messages


def gateway_argv(command: str) -> list[str]:
    """`gateway COMMAND`, behind $GATEWAY_BENCH_WRAP when set (a profiler's argv prefix in
    which `{command}` stands for COMMAND, e.g. `py-spy record --subprocesses -o {command}.svg
    --`)."""
    script = Path(sys.executable).parent / "gateway"
    gateway = [str(script)] if script.exists() else [sys.executable, "-m", "gateway"]
    wrap = os.environ.get("GATEWAY_BENCH_WRAP", "").replace("{command}", command)
    return [*shlex.split(wrap), *gateway, command]


def prepare_baseline(run: Run) -> Prepared:
    """`prepare_gateway` running the code of another checkout ($GATEWAY_BENCH_BASELINE, e.g.
    /work/main): the same run measures the change against what it changes."""
    return prepare_gateway(run, root=Path(os.environ["GATEWAY_BENCH_BASELINE"]))


def prepare_gateway(run: Run, root: Path = ROOT) -> Prepared:
    """A fresh data directory with one user and one source; `gateway sync` in a child."""
    data_dir = run.directory / "data"
    secret_key = Fernet.generate_key().decode()
    store = open_store(gateway_settings(data_dir, secret_key))
    try:
        user = store.create_user(name=GATEWAY_USER, password=PASSWORD)
        store.add_source(
            user_id=user.id,
            name="src",
            protocol=run.protocol,
            host="127.0.0.1",
            port=run.port,
            security="none",
            username=run.account,
            secret=PASSWORD,
            options=SOURCE_OPTIONS,
        )
    finally:
        store.close()

    def count_stored() -> int:
        store = open_store(gateway_settings(data_dir, secret_key))
        try:
            return gateway_inbox_count(store, GATEWAY_USER)
        finally:
            store.close()

    env = child_env(
        GATEWAY_DATA_DIR=str(data_dir), GATEWAY_SECRET_KEY=secret_key, PYTHONPATH=str(root)
    )

    def index_search_text() -> Usage:
        # `gateway sync` stores fetched mail before decoding its body text for SEARCH;
        # `gateway serve` does that in the background afterwards, `gateway index` at once
        # (what a cron setup runs after `gateway sync`): timed the same way, whole process.
        directory = run.directory / "index"
        directory.mkdir()
        return run_measured(gateway_argv("index"), env, directory, None)

    argv = [*gateway_argv("sync"), "--user", GATEWAY_USER, "--source", "src"]
    return Prepared(argv, env, count_stored, afterwards=index_search_text)


def prepare_getmail(run: Run) -> Prepared:
    maildir = make_maildir(run.directory / "Maildir")
    retriever = "SimplePOP3Retriever" if run.protocol == "pop3" else "SimpleIMAPRetriever"
    mailboxes = 'mailboxes = ("INBOX",)\n' if run.protocol == "imap" else ""
    rcfile = run.directory / "getmailrc"
    rcfile.write_text(
        f"[retriever]\ntype = {retriever}\nserver = 127.0.0.1\nport = {run.port}\n"
        f"username = {run.account}\npassword = {PASSWORD}\ntimeout = {GETMAIL_TIMEOUT}\n"
        f"{mailboxes}\n"
        f"[destination]\ntype = Maildir\npath = {maildir}/\n\n"
        "[options]\nverbose = 0\nread_all = true\ndelete = false\n"
    )
    rcfile.chmod(0o600)
    argv = ["getmail", "--rcfile", str(rcfile), "--getmaildir", str(run.directory)]
    env = child_env(HOME=str(run.directory))
    return Prepared(argv, env, lambda: maildir_count(maildir), MAIL_USER)


def prepare_fetchmail(run: Run) -> Prepared:
    maildir = make_maildir(run.directory / "Maildir")
    mailfilter = run.directory / "mailfilter"
    mailfilter.write_text(f'to "{maildir}/"\n')
    mailfilter.chmod(0o600)
    rcfile = run.directory / "fetchmailrc"
    rcfile.write_text(
        f"poll 127.0.0.1 service {run.port} protocol {run.protocol.upper()} auth password\n"
        f'  user "{run.account}" with password "{PASSWORD}"\n'
        f'  fetchall keep sslproto "" mda "/usr/bin/maildrop {mailfilter}"\n'
    )
    rcfile.chmod(0o600)  # fetchmail refuses an rcfile others can read
    argv = [
        "fetchmail",
        "--nosyslog",
        "--nodetach",
        "-f",
        str(rcfile),
        "--idfile",
        str(run.directory / "fetchids"),
        "--pidfile",
        str(run.directory / "fetchmail.pid"),
    ]
    env = child_env(HOME=str(run.directory), FETCHMAILHOME=str(run.directory))
    return Prepared(argv, env, lambda: maildir_count(maildir), MAIL_USER)


def prepare_mbsync(run: Run) -> Prepared:
    near = run.directory / "mail"
    near.mkdir()
    rcfile = run.directory / "mbsyncrc"
    # isync 1.4 syntax (SSLType; 1.5 renamed it TLSType). FSync is on by default.
    rcfile.write_text(
        f"IMAPAccount far\nHost 127.0.0.1\nPort {run.port}\nUser {run.account}\n"
        f"Pass {PASSWORD}\nSSLType None\nAuthMechs LOGIN\n\n"
        "IMAPStore far\nAccount far\n\n"
        f"MaildirStore near\nPath {near}/\nInbox {near}/INBOX\nSubFolders Verbatim\n\n"
        "Channel bench\nFar :far:\nNear :near:\nPatterns INBOX\nSync Pull\nCreate Near\n"
        "SyncState *\n"
    )
    rcfile.chmod(0o600)
    argv = ["mbsync", "-q", "-c", str(rcfile), "-a"]
    env = child_env(HOME=str(run.directory))
    return Prepared(argv, env, lambda: maildir_count(near / "INBOX"), MAIL_USER)


PREPARE: dict[str, Callable[[Run], Prepared]] = {
    "gateway": prepare_gateway,
    "baseline": prepare_baseline,
    "getmail6": prepare_getmail,
    "fetchmail": prepare_fetchmail,
    "mbsync": prepare_mbsync,
}


# --- initial sync runs --------------------------------------------------------------------


@dataclass
class Result:
    tool: str
    protocol: str
    expected: int
    stored: int | None = None
    usage: Usage | None = None
    server_cpu_seconds: float = 0.0
    other_cpu_seconds: float = 0.0  # every other process on the machine during the run
    stalled_seconds: float = 0.0  # a known hang of the tool, left out of msg/s (see note)
    engine_missing: bool = False  # `gateway sync` has no engine for this protocol yet
    note: str = ""
    afterwards: Usage | None = None
    round: int = 1

    @property
    def available(self) -> bool:
        return self.usage is not None and not self.engine_missing

    @property
    def messages_per_second(self) -> float:
        assert self.usage is not None and self.stored is not None
        return self.stored / (self.usage.seconds - self.stalled_seconds)

    @property
    def with_index_per_second(self) -> float:
        """The rate with the search-text fill that follows the sync counted in."""
        assert self.usage is not None and self.stored is not None
        extra = self.afterwards.seconds if self.afterwards else 0.0
        return self.stored / (self.usage.seconds - self.stalled_seconds + extra)


@dataclass(frozen=True)
class Context:
    dovecot: BenchDovecot
    accounts: Accounts
    work: Path


def run_tool(
    context: Context,
    tool: str,
    protocol: str,
    template: str,
    expected: int,
    *,
    round_number: int = 1,
) -> Result:
    result = Result(tool, protocol, expected, round=round_number)
    if tool in BINARIES and shutil.which(BINARIES[tool]) is None:
        result.note = f"not installed ({BINARIES[tool]} not on PATH)"
        return result
    account = f"{tool}-{protocol}-{template}-{round_number}"
    directory = context.work / "runs" / account
    directory.mkdir(parents=True)
    context.accounts.clone(template, account)
    context.accounts.warm(account)
    dovecot = context.dovecot
    port = dovecot.pop3_port if protocol == "pop3" else dovecot.imap_port
    prepared = PREPARE[tool](Run(tool, protocol, directory, account, port))
    if prepared.user is not None:
        chown_tree(directory, dovecot.uid, dovecot.gid)
    log(f"{tool} {protocol}: running ({directory})")
    # Flush dirty pages first (the corpus just written into Dovecot, the previous run's
    # Maildir), so that kernel writeback does not compete with this run's own fsyncs.
    os.sync()
    server_before, busy_before = tree_cpu_seconds(dovecot.master_pid()), busy_cpu_seconds()
    result.usage = run_measured(prepared.argv, prepared.env, directory, prepared.user)
    result.server_cpu_seconds = tree_cpu_seconds(dovecot.master_pid()) - server_before
    result.other_cpu_seconds = (
        busy_cpu_seconds() - busy_before - result.server_cpu_seconds - result.usage.cpu_seconds
    )
    result.stored = prepared.count_stored()
    if prepared.afterwards is not None:
        result.afterwards = prepared.afterwards()
        log(f"{tool} {protocol}: search text indexed in {result.afterwards.seconds:.1f} s")
    tool_log = (directory / "tool.log").read_text(errors="replace")
    if tool in ("gateway", "baseline") and ENGINE_MISSING in tool_log:
        result.engine_missing = True
        result.note = f"engine not available (gateway sync logged {ENGINE_MISSING})"
    elif tool == "getmail6" and GETMAIL_RACE in tool_log:
        # getmail6 installs its SIGCHLD handler only after fork(); a delivery child that
        # exits first is never noticed, and getmail gives up after `timeout` seconds
        # (upstream issues getmail6/getmail6#52, #226, #245). It then stops the whole run.
        result.stalled_seconds = GETMAIL_TIMEOUT
        result.note = (
            f"getmail6 stopped: a delivery child's exit was missed (its fork/SIGCHLD race), "
            f"it waited {GETMAIL_TIMEOUT} s and gave up; msg/s leaves that wait out"
        )
    else:
        notes = []
        if result.stored < expected:
            notes.append(f"{expected - result.stored} messages not stored")
        if result.usage.exit_code != 0:
            notes.append(failure_note(result.usage.exit_code, tool_log, directory / "tool.log"))
        elif notes:
            notes.append(f"log: {directory / 'tool.log'}")
        result.note = "; ".join(notes)
    log(f"{tool} {protocol}: {result.stored}/{expected} in {result.usage.seconds:.1f} s")
    return result


def chown_tree(top: Path, uid: int, gid: int) -> None:
    os.chown(top, uid, gid)
    for directory, subdirectories, files in os.walk(top):
        for name in subdirectories + files:
            os.chown(os.path.join(directory, name), uid, gid)


def failure_note(exit_code: int, text: str, log_path: Path) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    last = lines[-1][:120] if lines else "no output"
    return f"exit {exit_code}: {last} (log: {log_path})"


def print_table(results: list[Result], sizes: list[int]) -> None:
    """One row per run; MB/s counts the corpus sizes of the messages stored (the first ones,
    as every tool fetches in server order), so a run cut short is not credited the rest.

    Ratios compare rows of the same round: a peer's row gives gateway/peer for the sync alone
    and with the gateway's search-text fill (`gateway index`) counted in; the gateway's POP3
    row gives its rate against the gateway's own IMAP rate."""
    print(
        f"{'round':5} {'tool':10} {'proto':5} {'stored/expected':>15} {'seconds':>8} "
        f"{'msg/s':>7} {'+index':>7} {'MB/s':>6} {'RSS MB tree':>11} {'largest':>7} "
        f"{'CPU s':>6} {'Dovecot CPU s':>13} {'others CPU s':>12}  ratio"
    )
    gateway = {(r.round, r.protocol): r for r in results if r.tool == "gateway" and r.available}
    for r in results:
        if not r.available or r.usage is None:
            print(f"{r.round:5} {r.tool:10} {r.protocol:5} {r.note}")
            continue
        u = r.usage
        megabytes = sum(sizes[: r.stored]) / 1e6
        ratio = ""
        if r.tool != "gateway":
            ours = gateway.get((r.round, r.protocol))
            if ours is None:
                ratio = "n/a (no gateway row)"
            elif not r.stored:
                ratio = "n/a (nothing stored)"
            else:
                # A baseline gateway indexes too: compare like with like.
                theirs = r.with_index_per_second if r.afterwards else r.messages_per_second
                ratio = (
                    f"gateway/{r.tool} {ours.messages_per_second / r.messages_per_second:.2f}x, "
                    f"with index {ours.with_index_per_second / theirs:.2f}x"
                )
        elif r.protocol == "pop3" and (imap := gateway.get((r.round, "imap"))) and imap.stored:
            ratio = f"POP3/IMAP {r.messages_per_second / imap.messages_per_second:.2f}x"
        with_index = f"{r.with_index_per_second:7.0f}" if r.afterwards else f"{'':7}"
        print(
            f"{r.round:5} {r.tool:10} {r.protocol:5} {f'{r.stored}/{r.expected}':>15} "
            f"{u.seconds:8.1f} {r.messages_per_second:7.0f} {with_index} "
            f"{megabytes / (u.seconds - r.stalled_seconds):6.1f} "
            f"{u.peak_tree_rss_mb:11.0f} {u.peak_process_rss_mb:7.0f} {u.cpu_seconds:6.1f} "
            f"{r.server_cpu_seconds:13.1f} {r.other_cpu_seconds:12.1f}  {ratio}"
        )
        if r.note:
            print(f"{'':23}{r.note}")
        if r.afterwards:
            print(
                f"{'':23}then `gateway index` (search text): {r.afterwards.seconds:.1f} s, "
                f"{r.afterwards.cpu_seconds:.1f} CPU s"
            )


def load_average() -> str:
    return "load average " + ", ".join(f"{value:.2f}" for value in os.getloadavg())


# --- push latency and idle sources (need the scheduler in `gateway serve`) ----------------


def modules_missing(names: tuple[str, ...]) -> str | None:
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as error:  # any failure (missing, mid-edit) means "not there yet"
            return f"{name} does not import: {type(error).__name__}: {error}"
    return None


def stop_gateway(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def gateway_with_sources(
    directory: Path, specs: list[tuple[str, str, int]], interval: int, per_user: int
) -> tuple[Path, str]:
    """A data directory whose users own `specs` (protocol, Dovecot account, port) as sources."""
    data_dir = directory / "data"
    secret_key = Fernet.generate_key().decode()
    store = open_store(gateway_settings(data_dir, secret_key))
    try:
        user_id = 0
        for index, (protocol, account, port) in enumerate(specs):
            if index % per_user == 0:
                name = GATEWAY_USER if per_user >= len(specs) else f"idle-{index // per_user:03d}"
                user_id = store.create_user(name=name, password=PASSWORD).id
            store.add_source(
                user_id=user_id,
                name=f"src-{index:04d}",
                protocol=protocol,
                host="127.0.0.1",
                port=port,
                security="none",
                username=account,
                secret=PASSWORD,
                poll_interval=interval,
                options=SOURCE_OPTIONS,
            )
    finally:
        store.close()
    return data_dir, secret_key


def status_messages(client: ImapClient) -> int:
    for line in client.command(b"STATUS INBOX (MESSAGES)"):
        if line.startswith(b"* STATUS"):
            return int(line.rsplit(b"MESSAGES", 1)[1].strip(b" )\r\n"))
    raise ImapError("no STATUS response")


def measure_push(context: Context, rounds: int) -> str:
    """APPEND to the source's Dovecot INBOX → `* n EXISTS` on a gateway IDLE session.

    A second IDLE session, on Dovecot itself, sees the same APPENDs: its latency is the floor
    (the gateway learns of new mail through Dovecot's own IDLE notification)."""
    missing = modules_missing(PUSH_MODULES)
    if missing:
        return f"push latency: not available ({missing})"
    dovecot, directory = context.dovecot, context.work / "push"
    directory.mkdir(parents=True)
    context.accounts.load_template("push", [small_message(0)])
    data_dir, secret_key = gateway_with_sources(
        directory, [("imap", "push", dovecot.imap_port)], interval=60, per_user=1
    )
    context.accounts.wait_until_usable()
    process, port = start_gateway(data_dir, secret_key)
    try:
        client = ImapClient(port)
        client.command(f'LOGIN "{GATEWAY_USER}" "{PASSWORD}"'.encode())
        deadline = time.monotonic() + FIRST_FETCH_TIMEOUT
        while status_messages(client) < 1:
            if time.monotonic() > deadline:
                return (
                    f"push latency: not available (gateway serve did not fetch the source's "
                    f"first message within {FIRST_FETCH_TIMEOUT:.0f} s)"
                )
            time.sleep(0.5)
        native = ImapClient(dovecot.imap_port)
        native.command(f'LOGIN "push" "{PASSWORD}"'.encode())
        gateway_times, dovecot_times = idle_latencies([client, native], dovecot.imap_port, rounds)
    finally:
        stop_gateway(process)
    if len(gateway_times) < rounds:
        return (
            f"push latency: only {len(gateway_times)} of {rounds} messages reached the gateway "
            "within 60 s each"
        )

    def summary(values: list[float]) -> str:
        return (
            f"median {statistics.median(values) * 1000:.0f} ms, "
            f"p95 {percentile(values, 0.95) * 1000:.0f} ms, max {max(values) * 1000:.0f} ms"
        )

    return (
        f"push latency over {rounds} messages, Dovecot APPEND OK → IDLE EXISTS: gateway "
        f"{summary(gateway_times)}; Dovecot's own IDLE session {summary(dovecot_times)}"
    )


def idle_latencies(
    idlers: list[ImapClient], dovecot_port: int, rounds: int
) -> tuple[list[float], ...]:
    """Per idler, seconds from each APPEND's tagged OK to its `* n EXISTS`."""
    queues: list[queue.Queue[float]] = []
    listeners: list[threading.Thread] = []
    for idler in idlers:
        idler.command(b"SELECT INBOX")
        tag = idler.send_command(b"IDLE")
        idler.read_line()  # "+ idling"
        arrivals: queue.Queue[float] = queue.Queue()
        listener = threading.Thread(target=listen, args=(idler, tag, arrivals), daemon=True)
        listener.start()
        queues.append(arrivals)
        listeners.append(listener)
    appender = ImapClient(dovecot_port)
    appender.command(f'LOGIN "push" "{PASSWORD}"'.encode())
    latencies: tuple[list[float], ...] = tuple([] for _ in idlers)
    for number in range(1, rounds + 1):
        time.sleep(0.2)
        for arrivals in queues:
            while not arrivals.empty():
                arrivals.get_nowait()
        appender.command(b"APPEND INBOX", literal=small_message(number))
        acknowledged = time.perf_counter()
        try:
            for arrivals, values in zip(queues, latencies, strict=True):
                values.append(arrivals.get(timeout=60) - acknowledged)
        except queue.Empty:
            break
    appender.command(b"LOGOUT")
    appender.close()
    for idler, listener in zip(idlers, listeners, strict=True):
        idler.sock.sendall(b"DONE\r\n")
        listener.join(10)
        idler.close()
    return latencies


def listen(idler: ImapClient, tag: bytes, arrivals: queue.Queue[float]) -> None:
    """Note the time of every `* n EXISTS` until IDLE's tagged reply."""
    try:
        while not (line := idler.read_line()).startswith(tag):
            if line.endswith(b" EXISTS\r\n"):
                arrivals.put(time.perf_counter())
    except (OSError, ImapError):
        return


def imap_engine_available(context: Context) -> bool:
    context.accounts.load_template("probe", [small_message(0)])
    probe = run_tool(context, "gateway", "imap", "probe", 1)
    return probe.available and probe.stored == 1


def measure_idle_sources(context: Context, count: int, seconds: float, imap: bool) -> str:
    """CPU of `gateway serve` holding `count` sources that poll every 60 s with nothing new."""
    missing = modules_missing(("gateway.fetch.scheduler",))
    if missing:
        return f"idle sources: not available ({missing})"
    dovecot, directory = context.dovecot, context.work / "idle"
    directory.mkdir(parents=True)
    context.accounts.load_template("idle-template", [small_message(0)])
    protocols = ("pop3", "imap") if imap else ("pop3",)
    specs = []
    for index in range(count):
        protocol, account = protocols[index % len(protocols)], f"idle-{index:04d}"
        context.accounts.clone("idle-template", account)
        port = dovecot.pop3_port if protocol == "pop3" else dovecot.imap_port
        specs.append((protocol, account, port))
    data_dir, secret_key = gateway_with_sources(directory, specs, interval=60, per_user=20)
    mix = "half POP3, half IMAP" if imap else "all POP3 (no IMAP engine yet)"
    context.accounts.wait_until_usable()
    process, _port = start_gateway(data_dir, secret_key)
    store = open_store(gateway_settings(data_dir, secret_key))
    try:
        started = time.monotonic()
        while (attempted := sum(1 for s in store.list_sources() if s.last_attempt_at)) < count:
            waited = time.monotonic() - started
            if process.poll() is not None:
                return f"idle sources: gateway serve exited (log: {directory}/gateway.log)"
            if attempted == 0 and waited > FIRST_FETCH_TIMEOUT:
                return (
                    f"idle sources: not available (gateway serve attempted none of {count} "
                    f"sources in {FIRST_FETCH_TIMEOUT:.0f} s: no scheduler running in serve)"
                )
            if waited > 900:
                log(f"idle sources: only {attempted}/{count} attempted after 900 s; measuring")
                break
            time.sleep(2)
        log(f"idle sources: first sync of {count} took {time.monotonic() - started:.0f} s")
        time.sleep(10)
        gateway_log = directory / "gateway.log"  # where start_gateway sends its output
        log_offset = gateway_log.stat().st_size
        window_start = datetime.now(UTC)
        gateway_before = tree_cpu_seconds(process.pid)
        dovecot_before = tree_cpu_seconds(dovecot.master_pid())
        began = time.perf_counter()
        time.sleep(seconds)
        elapsed = time.perf_counter() - began
        gateway_cpu = tree_cpu_seconds(process.pid) - gateway_before
        dovecot_cpu = tree_cpu_seconds(dovecot.master_pid()) - dovecot_before
        rss = tree_rss_mb(process.pid)
        sources = store.list_sources()
        with gateway_log.open("rb") as output:
            output.seek(log_offset)
            syncs = output.read().count(b"event=sync_finished ")
    finally:
        store.close()
        stop_gateway(process)
    polled = sum(1 for s in sources if aware(s.last_attempt_at) >= window_start)
    failing = sum(1 for s in sources if s.last_error_class)
    return (
        f"idle sources: {count} ({mix}), poll interval 60 s, {elapsed:.0f} s window: "
        f"gateway serve {gateway_cpu:.1f} CPU s = {gateway_cpu / elapsed * 100:.1f} % of one core "
        f"(RSS {rss:.0f} MB, process tree); Dovecot {dovecot_cpu / elapsed * 100:.1f} %; "
        f"{polled} of {count} sources polled in the window, {failing} failing; "
        + (
            f"{syncs} syncs logged, {gateway_cpu / syncs * 1000:.1f} ms of gateway CPU each"
            if syncs
            else "no event=sync_finished lines in the gateway log to count syncs by"
        )
    )


def aware(moment: datetime | None) -> datetime:
    if moment is None:
        return datetime.min.replace(tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --- main ---------------------------------------------------------------------------------


def main() -> None:
    if len(sys.argv) > 4 and sys.argv[1] == "--measure" and sys.argv[4] == "--":
        user = None if sys.argv[3] == "-" else sys.argv[3]
        measure_command(Path(sys.argv[2]), user, sys.argv[5:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--corpus",
        choices=["mixed", "everyday"],
        default="mixed",
        help="mixed: benchmarks/ingest.py's (median ~19 KB); everyday: median ~5 KB, "
        "a long tail of attachments (benchmarks/everyday_corpus.py)",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="run the whole set of tools this many times"
    )
    parser.add_argument("--only", choices=["pop3", "imap"], help="one protocol only")
    parser.add_argument("--skip-peers", action="store_true", help="the gateway rows only")
    parser.add_argument("--peers", help="comma-separated peers to run (default: all)")
    parser.add_argument("--skip-sync", action="store_true", help="no initial-sync rows")
    parser.add_argument("--push", action="store_true", help="measure push latency via IDLE")
    parser.add_argument("--push-rounds", type=int, default=50)
    parser.add_argument("--idle-sources", type=int, default=0, metavar="N")
    parser.add_argument("--idle-seconds", type=float, default=120.0)
    add_location_arguments(parser, "fetch", "Dovecot, the Maildirs and data directories")
    args = parser.parse_args()
    args.work_dir = args.work_dir / "fetch"
    if args.corpus == "everyday":
        corpus_dir = args.corpus_dir / f"everyday-{args.count}-{args.seed}"
        write, malformed_every = write_everyday_corpus, EVERYDAY_MALFORMED_EVERY
    else:
        corpus_dir = args.corpus_dir / f"{args.count}-{args.seed}"
        write, malformed_every = write_corpus, MALFORMED_EVERY
    corpus_dir.mkdir(parents=True, exist_ok=True)
    count, total = write(corpus_dir, args.count, args.seed)
    files = sorted(corpus_dir.glob("*.eml"))
    sizes = sorted(path.stat().st_size for path in files)
    print(
        f"corpus {args.corpus}: {count} messages, {total / 1e6:.1f} MB (median "
        f"{sizes[len(sizes) // 2] / 1e3:.1f} KB, mean {total / count / 1e3:.1f} KB, p90 "
        f"{sizes[len(sizes) * 9 // 10] / 1e3:.1f} KB, {sum(s > 1e6 for s in sizes)} over 1 MB), "
        f"{count // malformed_every} of them malformed (every {malformed_every}th), "
        f"dir {corpus_dir}"
    )
    clear_and_settle(args.work_dir)
    dovecot = BenchDovecot(args.work_dir, "PLAIN")
    context = Context(dovecot, Accounts(dovecot), args.work_dir)
    try:
        dovecot.start()
        imap_engine: bool | None = None
        if not args.skip_sync:
            started = time.perf_counter()
            context.accounts.load_template("corpus", (path.read_bytes() for path in files))
            log(f"dovecot: corpus written in {time.perf_counter() - started:.1f} s")
            results: list[Result] = []
            for round_number in range(1, args.repeat + 1):
                log(f"round {round_number}: {load_average()}")
                for protocol in [args.only] if args.only else ["pop3", "imap"]:
                    peers = [] if args.skip_peers else PEERS[protocol]
                    if args.peers is not None:
                        peers = [peer for peer in peers if peer in args.peers.split(",")]
                    baseline = ["baseline"] if os.environ.get("GATEWAY_BENCH_BASELINE") else []
                    for tool in ["gateway", *baseline, *peers]:
                        result = run_tool(
                            context, tool, protocol, "corpus", count, round_number=round_number
                        )
                        results.append(result)
                        if tool == "gateway" and protocol == "imap":
                            imap_engine = result.available
            print_table(results, [path.stat().st_size for path in files])
            print(f"after the runs: {load_average()}")
        if args.push:
            print(measure_push(context, args.push_rounds))
        if args.idle_sources:
            if imap_engine is None:
                imap_engine = imap_engine_available(context)
            print(measure_idle_sources(context, args.idle_sources, args.idle_seconds, imap_engine))
    finally:
        dovecot.stop()


if __name__ == "__main__":
    main()
