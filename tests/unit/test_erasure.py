"""Personal data sealed per user, and erasure by deleting the key (in-memory store)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from commands.application import CarpriceApp
from commands.audit import replay_ledger
from domain.errors import EmailAlreadyRegistered, InvalidCredentials
from domain.ids import user_id_for
from domain.user import User
from domain.wallet import Wallet
from infra.personal import MemoryPersonalData, Unsealable, email_digest, seal, unseal
from infra.published import from_stored
from tests.fakes import CAR, FakeCatalog

NAME, EMAIL, PASSWORD = "Zelda Quartermaine", "zelda.q@example.com", "password-123"


@pytest.fixture
def app() -> CarpriceApp:
    return CarpriceApp(FakeCatalog())


def _store_bytes(app: CarpriceApp) -> bytes:
    return b"".join(bytes(s.state) for s in app.recorder._stored_events)  # type: ignore[attr-defined]  # noqa: SLF001


def test_name_email_and_password_hash_are_only_ciphertext_in_the_store_and_on_the_wire(
    app: CarpriceApp,
) -> None:
    account = app.sign_up(NAME, EMAIL, PASSWORD)
    stored = _store_bytes(app)
    for secret in (NAME.encode(), EMAIL.encode(), b"zelda", b"$argon2"):
        assert secret not in stored
    assert app.authenticate(EMAIL.upper(), PASSWORD) == account
    assert app.account(account.user_id).email == EMAIL
    registered = from_stored(app.recorder.select_events(account.user_id)[0], app.mapper.transcoder)
    assert "sealed" not in registered.data and "password_hash" not in registered.data  # never published
    assert registered.data["name"] == registered.data["email"] == ""


def test_a_sealed_record_opens_only_with_its_user_s_key() -> None:
    keys = MemoryPersonalData()
    ann, bob = uuid4(), uuid4()
    sealed = seal(keys.new_key(ann), ann, {"email": EMAIL})
    assert unseal(keys.key(ann) or b"", ann, sealed) == {"email": EMAIL}
    with pytest.raises(Unsealable):
        unseal(keys.new_key(bob), bob, sealed)  # another key
    with pytest.raises(Unsealable):
        unseal(keys.key(ann) or b"", bob, sealed)  # moved to another user


def test_erasure_needs_the_password_then_the_account_is_gone_and_the_email_free(app: CarpriceApp) -> None:
    old = app.sign_up(NAME, EMAIL, PASSWORD).user_id
    app.deposit(old, 100)
    job = app.request_prediction(old, "cheap", CAR).job_id
    app.complete_prediction(job, 15000.0, "1")
    failed = app.request_prediction(old, "pricey", CAR).job_id
    app.fail_prediction(failed, "model error")
    with pytest.raises(InvalidCredentials):
        app.erase_account(old, "not the password")
    assert app.authenticate(EMAIL, PASSWORD).user_id == old  # nothing changed

    assert app.erase_account(old, PASSWORD) is True
    assert app.personal.key(old) is None
    with pytest.raises(InvalidCredentials):
        app.authenticate(EMAIL, PASSWORD)
    with pytest.raises(InvalidCredentials):
        app.account(old)
    with pytest.raises(InvalidCredentials):
        app.user_id_of(EMAIL)
    assert app.erase_account(old, PASSWORD) is False  # once
    # the books: the ledger still replays, with its amounts and models
    ledger = replay_ledger(app, old)
    assert (ledger.balance, ledger.reserved) == (90, 0)
    assert [e.type for e in ledger.entries] == ["Opened", "Deposited", "Reserved", "Captured",
                                                "Reserved", "Released"]
    assert app.job(job).model_name == "cheap"
    # the email registers again, as a new account with a wallet of its own
    new = app.sign_up("Zelda Again", EMAIL, "another-password")
    assert new.user_id != old and app.balance(new.user_id).balance == 0
    assert app.authenticate(EMAIL, "another-password").name == "Zelda Again"
    with pytest.raises(EmailAlreadyRegistered):
        app.sign_up("Third", EMAIL, PASSWORD)


def test_concurrent_sign_ups_of_one_email_make_one_account(app: CarpriceApp) -> None:
    won: list[UUID] = []
    lost: list[Exception] = []
    start = threading.Barrier(8)

    def sign_up(i: int) -> None:
        start.wait()
        try:
            won.append(app.sign_up(f"Racer {i}", EMAIL, PASSWORD).user_id)
        except EmailAlreadyRegistered as exc:
            lost.append(exc)

    threads = [threading.Thread(target=sign_up, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(lost) == 7
    assert app.authenticate(EMAIL, PASSWORD).user_id == won[0]


def test_a_sign_up_that_never_saved_frees_its_email_after_a_minute(app: CarpriceApp) -> None:
    ghost = uuid4()  # claimed, keyed, then the process died before saving the account
    app.personal.new_key(ghost)
    assert app.personal.claim(email_digest(EMAIL), ghost) == ghost
    with pytest.raises(EmailAlreadyRegistered):  # it might still be saving
        app.sign_up(NAME, EMAIL, PASSWORD)
    personal = app.personal
    assert isinstance(personal, MemoryPersonalData)
    personal.index[email_digest(EMAIL)] = (ghost, datetime.now(UTC) - timedelta(minutes=2))
    assert app.sign_up(NAME, EMAIL, PASSWORD).user_id != ghost


def test_an_account_from_before_keys_signs_in_is_erased_and_its_email_registers_again(
    app: CarpriceApp,
) -> None:
    from commands.passwords import hash_password

    legacy = User(name=NAME, email=EMAIL, password_hash=hash_password(PASSWORD))
    app.save(legacy, Wallet(user_id=legacy.id))
    assert legacy.id == user_id_for(EMAIL)
    assert app.authenticate(EMAIL, PASSWORD).user_id == legacy.id
    with pytest.raises(EmailAlreadyRegistered):
        app.sign_up("Copy", EMAIL, PASSWORD)
    assert app.erase_account(legacy.id, PASSWORD)
    with pytest.raises(InvalidCredentials):
        app.authenticate(EMAIL, PASSWORD)
    assert app.sign_up("New Zelda", EMAIL, PASSWORD).user_id != legacy.id
