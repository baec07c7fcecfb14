"""Schemathesis fuzzes every operation of the OpenAPI schema: nothing answers 5xx."""

from __future__ import annotations

import uuid

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.e2e.conftest import Api

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture(scope="package")
def token(api: Api) -> str:
    email = f"fuzz-{uuid.uuid4().hex[:8]}@example.com"
    requests.post(api.url("/sign_up"), json={"name": "Fuzz", "email": email,
                                            "password": "password-123"}, timeout=30)
    signed = requests.post(api.url("/sign_in"), json={"email": email, "password": "password-123"},
                           timeout=30)
    requests.post(api.url("/balance"), json={"amount": 1000}, timeout=30,
                  headers={"Authorization": f"Bearer {signed.json()['token']}"})
    return str(signed.json()["token"])


def test_generated_requests_never_get_a_server_error(api: Api, token: str) -> None:
    schema = schemathesis.openapi.from_url(f"{api.base}/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        streams = operation.path.endswith("/jobs/events")  # endless: read the head only

        @given(case=operation.as_strategy())
        @settings(max_examples=30, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def fuzz(case) -> None:  # type: ignore[no-untyped-def]
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
            if streams:  # noqa: B023 - fuzz() runs right away, in this iteration
                with requests.request(**case.as_transport_kwargs(base_url=api.base), stream=True,
                                      timeout=30) as response:
                    if response.status_code == 200:
                        assert response.headers["content-type"].startswith("text/event-stream")
                        return
                    response.content  # noqa: B018 - an error answers a problem document
            else:
                response = case.call(base_url=api.base)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code} "
                                f"{response.text[:200]}")
            elif response.status_code >= 400:
                assert isinstance(response.json()["detail"], str)

        fuzz()
    assert operations >= 12
    assert failures == []
