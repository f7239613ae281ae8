"""Unit tests of the IMAP source engine's pure parts: folder plans, the three-way flag merge,
UID sets, reply classification, retry times and the daily budget (no network)."""

from __future__ import annotations

import imaplib
import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from imapclient.exceptions import LoginError

from gateway.fetch.budget import MEGABYTE, BudgetExhaustedError, DailyBudget, daily_limit
from gateway.fetch.errors import (
    SyncError,
    ThrottledError,
    classify_error,
    classify_imap_reply,
    suggested_backoff_seconds,
)
from gateway.fetch.flag_merge import FlagState, merge_flags
from gateway.fetch.imap_folders import FolderPlan, RemoteFolder, local_folder_name, plan_folders
from gateway.fetch.imap_wire import parse_uid_set, sequence_set
from gateway.fetch.runner import BACKOFF_CAP_SECONDS, next_run_after_failure
from gateway.store import MailStore, SourceInfo
from gateway.store.flags import ANSWERED, DRAFT, FLAGGED, SEEN
from tests.fetch.helpers import add_imap_source

# --- folder plans ----------------------------------------------------------------------------


def _folder(name: str, *attributes: str, delimiter: str | None = "/") -> RemoteFolder:
    return RemoteFolder(name=name, delimiter=delimiter, attributes=frozenset(attributes))


def _plan(*folders: RemoteFolder, chosen: list[str] | None = None) -> list[FolderPlan]:
    return plan_folders(folders, source_name="isp", chosen=chosen)


def _by_remote(plans: list[FolderPlan]) -> dict[str, tuple[str, str | None]]:
    return {plan.remote_name: (plan.local_name, plan.special_use) for plan in plans}


def test_inbox_comes_first_whatever_the_list_order() -> None:
    plans = _plan(_folder("Work"), _folder("Archive", "\\Archive"), _folder("inbox"))
    assert plans[0] == FolderPlan("inbox", "INBOX")
    assert plans[0].is_inbox and not any(plan.is_inbox for plan in plans[1:])
    assert [plan.remote_name for plan in plans] == ["inbox", "Archive", "Work"]


def test_announced_special_use_wins_over_a_well_known_name() -> None:
    # "Sent" is listed first and looks like the Sent folder, but the server says otherwise.
    plans = _by_remote(
        _plan(
            _folder("INBOX"),
            _folder("Sent"),
            _folder("Gesendete Objekte", "\\Sent", "\\HasNoChildren"),
            _folder("Trash"),
        )
    )
    assert plans["Gesendete Objekte"] == ("", "\\Sent")
    assert plans["Sent"] == ("isp/Sent", None), "the name guess loses: \\Sent is taken"
    assert plans["Trash"] == ("", "\\Trash"), "without an announced \\Trash the name counts"


def test_attributes_are_matched_case_insensitively() -> None:
    plans = _by_remote(_plan(_folder("Papierkorb", "\\TRASH"), _folder("Outbox", "\\noselect")))
    assert plans == {"Papierkorb": ("", "\\Trash")}


@pytest.mark.parametrize(
    ("name", "delimiter", "use"),
    [
        ("Sent Items", "/", "\\Sent"),
        ("[Gmail]/Sent Mail", "/", "\\Sent"),
        ("INBOX.Trash", ".", "\\Trash"),
        ("INBOX.Sent Messages", ".", "\\Sent"),
        ("Deleted Items", "/", "\\Trash"),
        ("Junk E-mail", "/", "\\Junk"),
        ("[Gmail]/Spam", "/", "\\Junk"),
        ("Drafts", None, "\\Drafts"),
        ("Entwürfe", "/", "\\Drafts"),
        ("archive", "/", "\\Archive"),
    ],
)
def test_well_known_names_feed_the_special_folders(
    name: str, delimiter: str | None, use: str
) -> None:
    plans = _by_remote(
        _plan(_folder("INBOX", delimiter=delimiter), _folder(name, delimiter=delimiter))
    )
    assert plans[name] == ("", use)


@pytest.mark.parametrize(
    ("name", "local"),
    [
        ("Projects/Sent", "isp/Projects/Sent"),  # a user folder that happens to be called Sent
        ("INBOX/Clients/Trash", "isp/Clients/Trash"),  # too deep to be the Trash
        ("Sentinel", "isp/Sentinel"),
    ],
)
def test_names_only_count_at_the_top_or_under_inbox_or_a_provider_container(
    name: str, local: str
) -> None:
    assert _by_remote(_plan(_folder(name))) == {name: (local, None)}


def test_unselectable_folders_are_skipped() -> None:
    plans = _plan(
        _folder("INBOX"),
        _folder("[Gmail]", "\\Noselect", "\\HasChildren"),
        _folder("Gone", "\\NonExistent"),
        _folder("[Gmail]/Drafts", "\\Drafts"),
    )
    assert [plan.remote_name for plan in plans] == ["INBOX", "[Gmail]/Drafts"]


def test_gmail_virtual_views_are_not_synced() -> None:
    plans = _plan(
        _folder("INBOX"),
        _folder("[Gmail]", "\\Noselect"),
        _folder("[Gmail]/All Mail", "\\All", "\\HasNoChildren"),
        _folder("[Gmail]/Starred", "\\Flagged"),
        _folder("[Gmail]/Important", "\\Important"),
        _folder("[Gmail]/Sent Mail", "\\Sent"),
        _folder("[Gmail]/Bin", "\\Trash"),
        _folder("Receipts"),
    )
    assert _by_remote(plans) == {
        "INBOX": ("INBOX", None),
        "[Gmail]/Sent Mail": ("", "\\Sent"),
        "[Gmail]/Bin": ("", "\\Trash"),
        "Receipts": ("isp/Receipts", None),
    }


def test_chosen_folders_only() -> None:
    listed = [
        _folder("INBOX"),
        _folder("Sent", "\\Sent"),
        _folder("Work"),
        _folder("Work/2024"),
        _folder("Private"),
    ]
    assert [p.remote_name for p in _plan(*listed, chosen=["inbox", "Work/2024"])] == [
        "INBOX",
        "Work/2024",
    ]
    assert [p.remote_name for p in _plan(*listed, chosen=["Sent", "Private"])] == [
        "Sent",
        "Private",
    ], "INBOX too is only synced when chosen"
    assert _plan(*listed, chosen=[]) == []
    assert _plan(*listed, chosen=["work"]) == [], "names other than INBOX are case-sensitive"


def test_courier_style_inbox_prefix_is_dropped() -> None:
    plans = _by_remote(
        _plan(
            _folder("INBOX", delimiter="."),
            _folder("INBOX.Work", delimiter="."),
            _folder("INBOX.Work.2024", delimiter="."),
            _folder("INBOX.Sent", delimiter="."),
        )
    )
    assert plans == {
        "INBOX": ("INBOX", None),
        "INBOX.Work": ("isp/Work", None),
        "INBOX.Work.2024": ("isp/Work/2024", None),
        "INBOX.Sent": ("", "\\Sent"),
    }


def test_local_folder_name_keeps_the_hierarchy_and_escapes_our_separator() -> None:
    assert local_folder_name(_folder("Lists/python/dev"), "isp") == "isp/Lists/python/dev"
    assert local_folder_name(_folder("INBOX.a/b", delimiter="."), "isp") == "isp/a_b"
    assert local_folder_name(_folder("No delimiter/here", delimiter=None), "isp") == (
        "isp/No delimiter_here"
    )
    assert local_folder_name(_folder("INBOX/Work"), "Work mail") == "Work mail/Work"


@pytest.mark.parametrize(
    "folders",
    [
        pytest.param([("Work", "/"), ("INBOX/Work", "/")], id="top-level-listed-first"),
        pytest.param([("INBOX/Work", "/"), ("Work", "/")], id="inbox-child-listed-first"),
        pytest.param(
            [("INBOX/Work", "/"), ("Work", "/"), ("INBOX_Work", "/")], id="fallback-taken-too"
        ),
        # With "." as delimiter "a/b" is one level holding our separator, escaped to "a_b".
        pytest.param([("a/b", "."), ("a_b", ".")], id="escaped-separator-vs-underscore"),
    ],
)
def test_two_remote_folders_never_share_a_local_mailbox(folders: list[tuple[str, str]]) -> None:
    plans = _plan(*(_folder(name, delimiter=delimiter) for name, delimiter in folders))
    local_names = [plan.local_name for plan in plans]
    assert len(local_names) == len(folders)
    assert len(set(local_names)) == len(local_names), f"one mailbox for two: {local_names}"


def test_each_special_use_is_fed_by_one_folder_only() -> None:
    plans = _by_remote(
        _plan(_folder("Trash", "\\Trash"), _folder("Deleted Items", "\\Trash"), _folder("Bin"))
    )
    assert plans == {
        "Trash": ("", "\\Trash"),
        "Deleted Items": ("isp/Deleted Items", None),
        "Bin": ("isp/Bin", None),
    }


# --- three-way flag merge --------------------------------------------------------------------


def _state(bits: int = 0, *keywords: str) -> FlagState:
    return FlagState(bits, frozenset(keywords))


def test_local_only_change_wins() -> None:
    result = merge_flags(_state(0), _state(SEEN | FLAGGED), _state(0))
    assert result.merged == _state(SEEN | FLAGGED)
    assert result.local_changed and not result.remote_changed and not result.both_changed


def test_remote_only_change_wins() -> None:
    result = merge_flags(_state(SEEN), _state(SEEN), _state(FLAGGED, "$Work"))
    assert result.merged == _state(FLAGGED, "$Work")
    assert result.remote_changed and not result.local_changed


def test_both_sides_changed_different_flags_keeps_both_changes() -> None:
    base = _state(SEEN, "$Old")
    local = _state(SEEN | FLAGGED, "$Old", "$Local")  # +\Flagged, +$Local
    remote = _state(0, "$Remote")  # -\Seen, -$Old, +$Remote
    result = merge_flags(base, local, remote)
    assert result.merged == _state(FLAGGED, "$Local", "$Remote")
    assert result.both_changed


def test_both_sides_changed_the_same_flag_the_same_way() -> None:
    base = _state(SEEN | ANSWERED, "$Todo")
    local = _state(ANSWERED | FLAGGED, "$Done")
    remote = _state(ANSWERED | FLAGGED | DRAFT, "$Done")
    result = merge_flags(base, local, remote)
    assert result.merged == _state(ANSWERED | FLAGGED | DRAFT, "$Done")
    assert result.both_changed


def test_gateway_source_keywords_are_never_synced() -> None:
    base = _state(0)
    local = _state(0, "$Src-isp", "$Src-work")
    remote = _state(SEEN, "$Src-elsewhere")
    result = merge_flags(base, local, remote)
    assert result.merged == _state(SEEN), "no $Src- keyword goes to the source or comes back"
    assert not result.local_changed, "a $Src- keyword is not a local change"
    assert not merge_flags(base, _state(0), _state(0, "$Src-x")).remote_changed


def test_remote_without_keyword_support_keeps_local_keywords() -> None:
    base = _state(SEEN, "$Kept")
    local = _state(SEEN, "$Kept", "$New", "$Src-isp")
    remote = _state(SEEN | FLAGGED)  # PERMANENTFLAGS without \*: no keywords at all
    result = merge_flags(base, local, remote, remote_keywords=False)
    assert result.merged == _state(SEEN | FLAGGED, "$Kept", "$New")
    assert result.remote_changed and result.local_changed
    dropped = merge_flags(base, _state(SEEN), _state(SEEN), remote_keywords=False)
    assert dropped.merged == _state(SEEN), "a keyword removed locally stays removed"
    untouched = merge_flags(base, base, _state(SEEN), remote_keywords=False)
    assert untouched.merged == base and not untouched.remote_changed


_bits = st.integers(min_value=0, max_value=SEEN | ANSWERED | FLAGGED | DRAFT | 8)
_keywords = st.frozensets(st.sampled_from(["$A", "$B", "$C", "$Src-isp", "NonJunk"]))
_states = st.builds(FlagState, _bits, _keywords)


@given(_states, _states, _states)
def test_merge_is_symmetric_and_takes_the_changed_side(
    base: FlagState, local: FlagState, remote: FlagState
) -> None:
    merged = merge_flags(base, local, remote).merged
    # Flags are booleans: a flag changed on both sides has one value, so order cannot matter.
    assert merged == merge_flags(base, remote, local).merged
    assert not any(k.startswith("$Src-") for k in merged.keywords)
    syncable = frozenset(k for k in remote.keywords if not k.startswith("$Src-"))
    assert merge_flags(base, base, remote).merged == FlagState(remote.bits, syncable)
    # Merging again with the result as the new agreed state changes nothing.
    again = merge_flags(merged, merged, merged)
    assert again.merged == merged and not again.local_changed and not again.remote_changed


# --- UID sets --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uids", "text"),
    [
        ([], ""),
        ([5], "5"),
        ([1, 2, 3, 7, 9, 10], "1:3,7,9:10"),
        ([10, 9, 1, 3, 2, 3, 7], "1:3,7,9:10"),
        ([4294967294, 4294967295], "4294967294:4294967295"),
    ],
)
def test_sequence_set_is_compact_and_sorted(uids: list[int], text: str) -> None:
    assert sequence_set(uids) == text


def test_parse_uid_set_keeps_the_servers_order() -> None:
    # RFC 4315 §4.3: COPYUID sets pair up by position; a range may run downwards.
    assert parse_uid_set("3:1") == [3, 2, 1]
    assert parse_uid_set("7,1:2,5") == [7, 1, 2, 5]
    assert parse_uid_set("42") == [42]


@given(st.lists(st.integers(min_value=1, max_value=4294967295), min_size=1))
def test_uid_set_round_trip_on_any_uids(uids: list[int]) -> None:
    assert parse_uid_set(sequence_set(uids)) == sorted(set(uids))


@given(st.lists(st.integers(min_value=1, max_value=60), min_size=1))
def test_uid_set_is_minimal(uids: list[int]) -> None:
    text = sequence_set(uids)
    ordered = sorted(set(uids))
    runs = 1 + sum(1 for a, b in itertools.pairwise(ordered) if b != a + 1)
    assert len(text.split(",")) == runs
    assert parse_uid_set(text) == ordered


# --- server replies and retry times ----------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "during_auth", "expected"),
    [
        (b"[AUTHENTICATIONFAILED] Authentication failed.", False, "auth"),
        (b"[AUTHORIZATIONFAILED] No such authorization-ID", False, "auth"),
        (b"[EXPIRED] Password expired", False, "auth"),
        (b"Invalid credentials (Failure)", True, "auth"),
        (b"Invalid credentials (Failure)", False, "protocol"),
        (b"[OVERQUOTA] Mailbox is full", False, "quota"),
        (b"[OVERQUOTA] Download quota exceeded", True, "quota"),
        (b"Account exceeded command or bandwidth limits. (Failure)", True, "quota"),
        (b"[LIMIT] Too many messages", False, "quota"),
        (b"[UNAVAILABLE] Temporary failure, try again later", True, "throttled"),
        (b"[UNAVAILABLE] Temporary authentication failure. [host:2026]", True, "protocol"),
        (b"[SERVERBUG] Internal error occurred", False, "protocol"),
    ],
)
def test_classify_imap_reply(reply: bytes, during_auth: bool, expected: str) -> None:
    assert classify_imap_reply(reply, during_auth=during_auth).error_class == expected


def test_throttling_reply_carries_the_suggested_wait() -> None:
    reply = b"[UNAVAILABLE] Request is throttled. Suggested Backoff Time: 12345 milliseconds"
    error = classify_imap_reply(reply, during_auth=True)
    assert isinstance(error, ThrottledError)
    assert error.error_class == "throttled"
    assert error.retry_after == pytest.approx(12.345)
    without_hint = classify_imap_reply(b"[UNAVAILABLE] Try again later", during_auth=False)
    assert isinstance(without_hint, ThrottledError) and without_hint.retry_after is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("Request is throttled. Suggested Backoff Time: 12345 milliseconds", 12.345),
        ("suggested backoff time 500 ms", 0.5),
        ("User is authenticated but not connected.", None),
    ],
)
def test_suggested_backoff_seconds(text: str, seconds: float | None) -> None:
    assert suggested_backoff_seconds(text) == (pytest.approx(seconds) if seconds else None)


@pytest.mark.parametrize(
    ("error", "during_auth", "expected"),
    [
        (imaplib.IMAP4.abort("socket error: EOF"), False, "connect"),
        (imaplib.IMAP4.abort("command: FETCH => socket error: EOF"), False, "connect"),
        (imaplib.IMAP4.error(b"[AUTHENTICATIONFAILED] Authentication failed."), False, "auth"),
        (LoginError("b'[AUTHENTICATIONFAILED] Authentication failed.'"), True, "auth"),
        (LoginError("b'Request is throttled. Suggested Backoff Time: 100 ms'"), True, "throttled"),
        (imaplib.IMAP4.abort("BYE Request is throttled. Backoff Time: 2000"), False, "throttled"),
        (imaplib.IMAP4.error(b"[OVERQUOTA] quota exceeded"), False, "quota"),
    ],
)
def test_classify_imap_exceptions(error: BaseException, during_auth: bool, expected: str) -> None:
    classified = classify_error(error, during_auth=during_auth)
    assert classified.error_class == expected
    assert len(classified.message) < 220


def test_imap_error_text_is_printable_and_bounded() -> None:
    error = classify_error(imaplib.IMAP4.error(b"\x1b[31m" + b"x" * 1000), during_auth=True)
    assert error.error_class == "auth"
    assert "\x1b" not in error.message and len(error.message) < 220


NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


def _source(poll_interval: int = 60, failures: int = 0) -> SourceInfo:
    return SourceInfo(
        id=1,
        user_id=1,
        name="isp",
        protocol="imap",
        host="imap.example.org",
        port=993,
        security="tls",
        username="u",
        options={},
        poll_interval=poll_interval,
        enabled=True,
        last_attempt_at=None,
        last_success_at=None,
        last_error=None,
        last_error_class=None,
        consecutive_failures=failures,
        next_run_at=None,
        messages_fetched=0,
        bytes_fetched=0,
    )


def test_backoff_doubles_per_failure_and_is_capped() -> None:
    error = SyncError("connect", "refused")
    assert next_run_after_failure(_source(), NOW, error) == NOW + timedelta(seconds=60)
    assert next_run_after_failure(_source(failures=3), NOW, error) == NOW + timedelta(seconds=480)
    capped = next_run_after_failure(_source(failures=40), NOW, error)
    assert capped == NOW + timedelta(seconds=BACKOFF_CAP_SECONDS)


def test_retry_honours_the_servers_suggested_wait_when_longer() -> None:
    long_wait = ThrottledError("throttled", retry_after=7200.0)
    assert next_run_after_failure(_source(), NOW, long_wait) == NOW + timedelta(hours=2)
    short_wait = ThrottledError("throttled", retry_after=5.0)
    assert next_run_after_failure(_source(), NOW, short_wait) == NOW + timedelta(seconds=60)
    no_hint = ThrottledError("throttled", retry_after=None)
    assert next_run_after_failure(_source(failures=1), NOW, no_hint) == NOW + timedelta(seconds=120)


def test_retry_waits_for_the_budget_to_refill() -> None:
    tomorrow = datetime(2030, 6, 2, tzinfo=UTC)
    spent = BudgetExhaustedError("budget spent", tomorrow)
    assert spent.error_class == "quota" and isinstance(spent, SyncError)
    assert next_run_after_failure(_source(), NOW, spent) == tomorrow
    soon = BudgetExhaustedError("budget spent", NOW + timedelta(seconds=1))
    assert next_run_after_failure(_source(), NOW, soon) == NOW + timedelta(seconds=60)


# --- daily budget ----------------------------------------------------------------------------


@pytest.fixture
def budget_source(sqlite_store: MailStore) -> SourceInfo:
    return add_imap_source(
        sqlite_store, port=993, username="u", password="p", options={"daily_budget_mb": 1}
    )


def test_daily_limit_from_options() -> None:
    source = _source()
    assert daily_limit(source) == 2500 * MEGABYTE, "Gmail's IMAP limit by default"
    assert daily_limit(replace(source, protocol="pop3")) == 1250 * MEGABYTE
    assert daily_limit(replace(source, options={"daily_budget_mb": 0.5})) == MEGABYTE // 2
    assert daily_limit(replace(source, options={"daily_budget_mb": 0})) == 0
    assert daily_limit(replace(source, options={"daily_budget_mb": "lots"})) == 2500 * MEGABYTE
    assert daily_limit(replace(source, options={"daily_budget_mb": -3})) == 0


def test_budget_spends_saves_and_refills_each_utc_day(
    sqlite_store: MailStore, budget_source: SourceInfo
) -> None:
    sqlite_store.write_sync_state(budget_source.id, {"other": "kept"})
    morning = datetime(2030, 6, 1, 8, 0, tzinfo=UTC)
    budget = DailyBudget(sqlite_store, budget_source, morning)
    assert budget.limit == MEGABYTE and budget.spent == 0
    assert budget.allows(3 * MEGABYTE), "one message bigger than a day's budget still goes"
    budget.spend(600 * 1024)
    assert budget.allows(400 * 1024) and not budget.allows(500 * 1024)
    budget.save()

    evening = DailyBudget(sqlite_store, budget_source, morning.replace(hour=23, minute=59))
    assert evening.spent == 600 * 1024, "the same UTC day continues where it stopped"
    assert not evening.allows(3 * MEGABYTE)
    evening.spend(424 * 1024)
    evening.save()
    assert evening.allows(0) and not evening.allows(1), "exactly the limit is spent"
    error = evening.exhausted()
    assert error.resume_at == datetime(2030, 6, 2, tzinfo=UTC) and error.error_class == "quota"

    # 20:30 in New York is already the next day in UTC.
    next_day = DailyBudget(
        sqlite_store,
        budget_source,
        datetime(2030, 6, 1, 20, 30, tzinfo=timezone(-timedelta(hours=4))),
    )
    assert next_day.spent == 0 and next_day.allows(MEGABYTE)
    assert sqlite_store.read_sync_state(budget_source.id)["other"] == "kept"


def test_unlimited_budget_allows_everything(
    sqlite_store: MailStore, budget_source: SourceInfo
) -> None:
    unlimited = replace(budget_source, options={"daily_budget_mb": 0})
    budget = DailyBudget(sqlite_store, unlimited, NOW)
    budget.spend(10**12)
    assert budget.allows(10**12)
