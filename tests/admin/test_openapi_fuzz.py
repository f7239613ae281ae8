"""schemathesis against the admin API's own OpenAPI schema: generated requests to every
endpoint never get a 500, and every response matches the schema.

The connection tests are left out (their host and port are whatever the fuzzer makes up, and
this machine must not dial the world); suggestion runs with DNS pointed at a closed local port
and no autoconfig URLs, so it answers at once.
"""

from __future__ import annotations

from collections.abc import Iterator

import dns.asyncresolver
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from gateway.admin.app import create_app
from gateway.admin.sessions import new_api_token
from gateway.mail_settings.suggest import SettingsSuggester
from gateway.store import open_store
from tests.admin.conftest import RecordingScheduler
from tests.support.dovecot import free_port
from tests.support.fixtures_store import make_settings

TOKEN = new_api_token()


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    app_settings = make_settings(tmp_path_factory.mktemp("fuzz") / "data")
    store = open_store(app_settings)
    admin = store.create_user(name="root", password="root-pw", is_admin=True)
    store.create_api_token(user_id=admin.id, name="fuzz", token=TOKEN)
    store.add_source(
        user_id=admin.id,
        name="seed",
        protocol="imap",
        host="127.0.0.1",
        port=1,
        security="tls",
        username="u",
        secret="s",
    )
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = free_port()
    app = create_app(
        store,
        app_settings,
        scheduler=RecordingScheduler(),
        suggester=SettingsSuggester(resolver=resolver, urls=lambda _d, _a: [], timeout=0.2),
    )
    try:
        yield schemathesis.openapi.from_asgi("/openapi.json", app).exclude(path_regex=r"/test$")
    finally:
        store.close()


def test_no_server_errors_and_responses_match_the_schema(api_schema: object) -> None:
    # Driven through hypothesis directly: schemathesis' pytest plugin does not support the
    # pytest this project runs.
    assert isinstance(api_schema, schemathesis.BaseSchema)
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 20
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=15,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(
                headers={"Authorization": f"Bearer {TOKEN}"},
                checks=[not_a_server_error, response_schema_conformance],
            )

        check()
