"""Accounts: sign up, sign in, read, and erase, with personal data sealed by a key per user.

New accounts get a random id; the email index (infra.personal) makes one email one account,
and their name, email and password hash are sealed in `user.registered.v1` with the user's key.
Erasing records `user.erased.v1`, then deletes the key and the index row: the events keep
only ciphertext, the ledger still replays (wallets and jobs hold no personal data), and the
email can register again. Accounts from before keys (id = uuid5 of the email, personal data
in the clear) keep working and can be erased too; see docs/events.md for what stays of them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from commands.passwords import hash_password, verify_password
from commands.results import Account
from commands.write_side import WriteSide
from domain.errors import EmailAlreadyRegistered, InvalidCredentials, InvalidUserData
from domain.ids import normalise_email, user_id_for
from domain.text import text_problem
from domain.user import User
from domain.wallet import Wallet
from infra.personal import email_digest, seal, unseal

EMAIL_RE = re.compile(r"[^@\s]{1,64}@[^@\s]{1,185}\.[^@\s.]{2,63}")
MIN_PASSWORD, MAX_PASSWORD = 8, 256
# a claim on an email whose account was never saved (its sign-up crashed) is taken over after
STALE_CLAIM = timedelta(seconds=60)


class Accounts(WriteSide):
    """The account commands of CarpriceApp."""

    def sign_up(self, name: str, email: str, password: str) -> Account:
        """Register a user and open their wallet; one email has one account."""
        for field, value in (("name", name), ("email", email), ("password", password)):
            problem = text_problem(value) if isinstance(value, str) else "must be a text"
            if problem:
                raise InvalidUserData(f"{field} {problem}")
        name = name.strip()
        if not 1 <= len(name) <= 100:
            raise InvalidUserData("name must be 1 to 100 characters")
        email = normalise_email(email)
        if not EMAIL_RE.fullmatch(email):
            raise InvalidUserData("email must be a valid email address")
        if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
            raise InvalidUserData(f"password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters")
        legacy = self._user_or_none(user_id_for(email))
        if legacy is not None and not legacy.erased:
            raise EmailAlreadyRegistered()
        digest, user_id = email_digest(email), uuid4()
        owner = self.personal.owner(digest)
        stale = owner[0] if owner and self._is_stale(*owner) else None
        if owner and stale is None:
            raise EmailAlreadyRegistered()
        key = self.personal.new_key(user_id)
        if self.personal.claim(digest, user_id, stale) != user_id:
            self.personal.unclaim(digest, user_id)
            raise EmailAlreadyRegistered()  # a concurrent sign-up claimed it first
        sealed = seal(key, user_id, {"name": name, "email": email,
                                     "password_hash": hash_password(password)})
        user = User.register_sealed(user_id, sealed)
        try:
            self.save(user, Wallet(user_id=user_id))
        except BaseException:
            self.personal.unclaim(digest, user_id)
            raise
        return Account(user_id, name, email)

    def _is_stale(self, owner: UUID, since: datetime) -> bool:
        return self._user_or_none(owner) is None and datetime.now(UTC) - since > STALE_CLAIM

    def _personal(self, user: User) -> dict[str, str] | None:
        """The user's name, email and password hash; None once erased."""
        if user.erased:
            return None
        if user.sealed is None:  # an account from before keys
            return {"name": user.name, "email": user.email, "password_hash": user.password_hash}
        key = self.personal.key(user.id)
        return unseal(key, user.id, user.sealed) if key is not None else None

    def _user_of(self, email: str) -> User | None:
        owner = self.personal.owner(email_digest(email))
        return self._user_or_none(owner[0] if owner else user_id_for(email))

    def user_id_of(self, email: str) -> UUID:
        """The account an email signs in to (for operators' commands); InvalidCredentials if none."""
        user = self._user_of(email) if isinstance(email, str) else None
        if user is None or self._personal(user) is None:
            raise InvalidCredentials()
        return user.id

    def authenticate(self, email: str, password: str) -> Account:
        """The account of these credentials; one error for unknown email and wrong password."""
        user = self._user_of(email) if isinstance(email, str) else None
        found = self._personal(user) if user is not None else None
        ok = verify_password(str(password), found["password_hash"] if found else None)
        if user is None or found is None or not ok:
            raise InvalidCredentials()
        return Account(user.id, found["name"], found["email"])

    def account(self, user_id: UUID) -> Account:
        """A registered user's account (InvalidCredentials once erased)."""
        user = self._user_or_none(user_id)
        found = self._personal(user) if user is not None else None
        if user is None or found is None:
            raise InvalidCredentials()
        return Account(user.id, found["name"], found["email"])

    def erase_account(self, user_id: UUID, password: str) -> bool:
        """Erase an account, re-authenticated with its password: `user.erased.v1`, then the key
        and the email's index row are deleted. False: it was erased already (the deletion is
        finished again, in case a crash interrupted it)."""
        user = self._user_or_none(user_id)
        if user is None:
            raise InvalidCredentials()
        if user.erased:
            self.personal.shred(user_id)
            self.api_keys.delete_all(user_id)
            return False
        found = self._personal(user)
        if found is None or not verify_password(str(password), found["password_hash"]):
            raise InvalidCredentials()
        user.erase()
        try:
            self.save(user)
        except IntegrityError:  # erased by a concurrent request, which recorded it
            self.personal.shred(user_id)
            self.api_keys.delete_all(user_id)
            return False
        self.personal.shred(user_id)
        self.api_keys.delete_all(user_id)
        return True

    def _user_or_none(self, user_id: UUID) -> User | None:
        try:
            return self.repository.get(user_id)
        except AggregateNotFoundError:
            return None
