"""API-key commands on the in-memory store: the secret once, events, revocation, erasure."""

from __future__ import annotations

from uuid import uuid4

import pytest

from commands.application import CarpriceApp
from domain.api_key import ApiKey
from domain.errors import ApiKeyNotFound, InvalidApiKey
from infra.api_keys import digest, parse
from tests.fakes import FakeCatalog


@pytest.fixture
def app() -> CarpriceApp:
    return CarpriceApp(FakeCatalog())


def test_a_key_is_issued_once_as_an_event_and_stored_only_as_a_hash(app: CarpriceApp) -> None:
    user = app.sign_up("Dana", "dana@example.com", "password-123").user_id
    issued = app.issue_key(user, " dealer DMS ", ["read", "predict"], 600)
    assert parse(issued.secret) == issued.row.key_id
    assert issued.row.name == "dealer DMS" and issued.row.scopes == ("predict", "read")
    key = app.repository.get(issued.row.key_id)
    assert isinstance(key, ApiKey) and key.user_id == user and not key.revoked
    assert issued.secret not in repr(vars(key))
    stored = app.api_keys.rows[issued.row.key_id]  # type: ignore[attr-defined]
    assert stored[1] == digest(issued.secret) and issued.secret.encode() not in stored[1]
    assert [k.key_id for k in app.list_keys(user)] == [issued.row.key_id]


def test_revoking_is_for_the_owner_once(app: CarpriceApp) -> None:
    owner = app.sign_up("Dana", "dana@example.com", "password-123").user_id
    other = app.sign_up("Eve", "eve@example.com", "password-123").user_id
    issued = app.issue_key(owner, "dms", ["read"], 60)
    with pytest.raises(ApiKeyNotFound):
        app.revoke_key(other, issued.row.key_id)
    with pytest.raises(ApiKeyNotFound):
        app.revoke_key(owner, uuid4())
    assert app.revoke_key(owner, issued.row.key_id) is True
    assert app.revoke_key(owner, issued.row.key_id) is False
    assert app.list_keys(owner)[0].revoked_at is not None
    assert app.repository.get(issued.row.key_id).revoked


@pytest.mark.parametrize(("name", "scopes", "rate", "field"), [
    ("", ["read"], 60, "name"), ("dms", [], 60, "scopes"), ("dms", ["admin"], 60, "scopes"),
    ("dms", ["read"], 0, "rate_limit_per_minute")])
def test_a_bad_key_request_names_its_field(app: CarpriceApp, name: str, scopes: list[str], rate: int,
                                           field: str) -> None:
    user = app.sign_up("Dana", "dana@example.com", "password-123").user_id
    with pytest.raises(InvalidApiKey, match=field):
        app.issue_key(user, name, scopes, rate)
    assert app.list_keys(user) == []


def test_erasure_deletes_the_accounts_keys(app: CarpriceApp) -> None:
    user = app.sign_up("Dana", "dana@example.com", "password-123").user_id
    app.issue_key(user, "dms", ["read"], 60)
    assert app.erase_account(user, "password-123")
    assert app.list_keys(user) == []


def test_only_secrets_of_the_right_shape_are_looked_up() -> None:
    assert parse("eyJhbGciOi.jwt.token") is None
    assert parse("cpk_short_x") is None
    assert parse("cpk_" + "z" * 32 + "_x") is None
    assert parse("cpk_" + "0" * 32 + "_") is None


def test_the_statement_and_the_receipt_name_the_key_that_spent(app: CarpriceApp) -> None:
    from commands.application import Outcome
    from commands.audit import statement
    from commands.receipts import receipt
    from tests.fakes import CAR

    user = app.sign_up("Dana", "dana@example.com", "password-123").user_id
    app.deposit(user, 50)
    issued = app.issue_key(user, "dealer DMS", ["predict"], 60)
    by_key = app.request_prediction(user, "cheap", CAR, api_key=issued.row.key_id).job_id
    by_hand = app.request_prediction(user, "cheap", CAR).job_id
    app.record_outcomes([Outcome(by_key, result=100.0, model_version="1"),
                         Outcome(by_hand, result=100.0, model_version="1")])
    label = f"dealer DMS ({issued.row.prefix})"
    lines = statement(app, user).lines
    assert [(x.kind, x.key) for x in lines if x.job_id == by_key] == [("reservation", label),
                                                                      ("capture", label)]
    assert {x.key for x in lines if x.job_id != by_key} == {""}
    assert receipt(app, app.job(by_key, user))["api_key"] == {"key_id": str(issued.row.key_id),
                                                              "name": label}
    assert "api_key" not in receipt(app, app.job(by_hand, user))
