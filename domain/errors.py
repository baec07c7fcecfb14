"""Domain errors: each says, in words a user understands, which rule was broken."""

from __future__ import annotations


class DomainError(Exception):
    """A command broke a rule of the domain; nothing was recorded."""


class InvalidAmount(DomainError):
    """An amount of credits that is not a positive integer within bounds."""


class InsufficientCredits(DomainError):
    """The balance does not cover the price."""

    def __init__(self, balance: int, price: int, model_name: str = "") -> None:
        self.balance, self.price, self.model_name = balance, price, model_name
        what = f"{model_name} costs" if model_name else "this costs"
        super().__init__(
            f"not enough credits: {what} {price} credits and your balance is {balance}"
        )


class BalanceDecrease(DomainError):
    """A requested balance below the current one (credits are never silently removed)."""

    def __init__(self, balance: int, requested: int) -> None:
        self.balance, self.requested = balance, requested
        super().__init__(
            f"new_amount {requested} is below your balance of {balance} credits; "
            "a top-up can only raise the balance"
        )


class AlreadyCharged(DomainError):
    """The job was charged already."""


class NotCharged(DomainError):
    """A refund for a job this wallet never paid for."""


class EmailAlreadyRegistered(DomainError):
    """The email address belongs to an account already."""

    def __init__(self) -> None:
        super().__init__("this email is already registered")


class InvalidCredentials(DomainError):
    """Unknown email or wrong password: deliberately one error for both."""

    def __init__(self) -> None:
        super().__init__("invalid email or password")


class InvalidUserData(DomainError):
    """A name or email that cannot be registered."""


class UnknownModel(DomainError):
    """No model by that name (or version) is registered."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name, self.known = name, known
        super().__init__(f"unknown model {name!r}; available: {', '.join(known) or 'none'}")


class ExplanationUnavailable(DomainError):
    """An explanation was asked of a model version that cannot explain (trained before)."""

    def __init__(self, name: str, version: str) -> None:
        self.name, self.version = name, version
        super().__init__(f"explain: {name} v{version} offers no explanations; train a new "
                         "version or ask without `explain`")


class InvalidFeatures(DomainError):
    """Features that the model card does not accept, one message per field."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("invalid features: " + "; ".join(f"{k}: {v}" for k, v in errors.items()))


class InvalidBatch(DomainError):
    """A fleet batch refused as a whole: its bad rows (0-based) and what is wrong in each."""

    SHOWN = 50  # rows listed in the message; `rows` holds them all

    def __init__(self, rows: dict[int, dict[str, str]], problem: str = "") -> None:
        self.rows = rows
        listed = "; ".join(f"row {i}: " + ", ".join(f"{k}: {v}" for k, v in e.items())
                           for i, e in sorted(rows.items())[:self.SHOWN])
        more = f" (and {len(rows) - self.SHOWN} more rows)" if len(rows) > self.SHOWN else ""
        super().__init__(problem or f"{len(rows)} invalid rows, nothing was charged: {listed}{more}")


class BatchNotFound(DomainError):
    """No such batch (or not this user's)."""

    def __init__(self, batch_id: object) -> None:
        super().__init__(f"batch {batch_id} not found")


class JobNotFound(DomainError):
    """No such job (or not this user's)."""

    def __init__(self, job_id: object) -> None:
        super().__init__(f"job {job_id} not found")


class JobAlreadyFinished(DomainError):
    """A finished job cannot change its outcome."""


class Busy(DomainError):
    """Too many concurrent changes to the same account; safe to retry."""

    def __init__(self) -> None:
        super().__init__("too many concurrent changes to this account; please retry")


class InvalidApiKey(DomainError):
    """A key that cannot be issued as asked (its name, scopes or rate limit)."""


class ApiKeyNotFound(DomainError):
    """No such key (or not this user's)."""

    def __init__(self, key_id: object) -> None:
        super().__init__(f"API key {key_id} not found")


class InvalidSalePrice(DomainError):
    """A reported sale price that is not a price."""


class SaleNotReportable(DomainError):
    """A sale price for a job that has no price to compare it with (it failed)."""
