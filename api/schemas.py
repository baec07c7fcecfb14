"""Request and response models (the contract of SEED_API.md, plus additive fields)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue, StrictInt, model_validator

from domain.text import text_problem

EXAMPLE_CAR: dict[str, Any] = {
    "symboling": 3, "fueltype": "gas", "aspiration": "std", "doornumber": "two",
    "carbody": "convertible", "drivewheel": "rwd", "enginelocation": "front", "wheelbase": 88.6,
    "carlength": 168.8, "carwidth": 64.1, "carheight": 48.8, "curbweight": 2548,
    "enginetype": "dohc", "cylindernumber": "four", "enginesize": 130, "fuelsystem": "mpfi",
    "boreratio": 3.47, "stroke": 2.68, "compressionratio": 9.0, "horsepower": 111,
    "peakrpm": 5000, "citympg": 21, "highwaympg": 27, "brand": "alfa-romero", "model": "giulia",
}


def _clean(value: str) -> str:
    if problem := text_problem(value):
        raise ValueError(problem)
    return value


# Credits and counts a client sends are whole JSON numbers: `true`, `"10"` or `10.0` get a 422
# naming the field (lax pydantic would take them as 1 and 10). StrictInt, not int, for each.

# Text a client sends: refused with a 422 naming the field when it holds NUL, other control
# characters or a lone surrogate (nothing downstream could store or print it).
CleanText = Annotated[str, AfterValidator(_clean)]


def _example(**ex: JsonValue) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": [ex]})


class UserCreate(BaseModel):
    model_config = _example(name="John", email="john@example.com", password="correct horse 42")
    name: CleanText = Field(max_length=100)
    email: CleanText = Field(max_length=254)
    password: CleanText = Field(max_length=256)


class UserPublic(BaseModel):
    model_config = _example(name="John", email="john@example.com",
                            user_id="9de9e1c8-5728-5d5f-8429-1264a4ef3470")
    name: str
    email: str
    user_id: UUID


class SignIn(BaseModel):
    model_config = _example(email="john@example.com", password="correct horse 42")
    email: CleanText = Field(max_length=254)
    password: CleanText = Field(max_length=256)


class UserErase(BaseModel):
    model_config = _example(password="correct horse 42")
    password: CleanText = Field(max_length=256, description="your password, to confirm")


class ErasedPublic(BaseModel):
    model_config = _example(user_id="9de9e1c8-5728-5d5f-8429-1264a4ef3470", erased=True,
                            kept="the amounts of your deposits, holds and jobs, and the models "
                                 "they used, under this id: the books must balance")
    user_id: UUID
    erased: bool = Field(description="false: it had been erased already")
    kept: str = Field(description="what stays, and why")


class TokenPublic(BaseModel):
    model_config = _example(access_token="<JWT>", token="<JWT>", token_type="bearer",  # noqa: S106
                            name="John", email="john@example.com", expires_in=1800)
    access_token: str
    token: str  # old clients read this one
    token_type: str = "bearer"
    name: str
    email: str
    expires_in: int


class BalancePublic(BaseModel):
    model_config = _example(amount=50, available=50, reserved=10, promotional=20, stale=False)
    amount: int = Field(description="what you can spend now (old clients read only this)")
    available: int | None = Field(None, description="the same as `amount`: credits you can spend")
    reserved: int | None = Field(None, description="held for your jobs that have not ended: "
                                 "kept when a job finishes, given back when it fails or expires")
    promotional: int | None = Field(None, description="the part of `available` from promotional "
                                    "grants; spent first, it expires")
    stale: bool = Field(False, description="true when the read table had not caught up in time")
    as_of: datetime | None = Field(None, description="with `?as_of=`: the balance at that time, "
                                   "replayed from the event store")


class StatementLinePublic(BaseModel):
    model_config = _example(time="2026-12-01T10:00:01Z", kind="reservation", amount=-10,
                            credits=10, job_id="5a0c1d9e-0d6b-4f55-a7b2-3c1f7b0e9c11",
                            model="linear_regression", balance=40, reserved=10, detail="")
    time: datetime
    kind: str = Field(description="deposit, grant, reservation (a job's price held), capture (a "
                      "finished job's hold kept), release (a failed or expired job's hold given "
                      "back), expiry (a grant's rest), and for wallets from before holds: "
                      "charge, refund")
    amount: int = Field(description="signed: what the available balance gained or lost "
                        "(0 for a capture: the credits were held already)")
    credits: int = Field(0, description="the credits this line moved")
    job_id: UUID | None
    model: str = Field(description="the model the job was for")
    balance: int = Field(description="available after this line")
    reserved: int = Field(0, description="held after this line")
    detail: str = Field("", description="a grant's or a release's reason")
    key: str = Field("", description="the API key that spent these credits, as \"name (prefix)\"; "
                     "empty when you did, signed in")


class StatementPublic(BaseModel):
    model_config = _example(start="2026-12-01T00:00:00Z", end="2026-12-02T00:00:00Z",
                            opening_balance=0, closing_balance=40, lines=[
                                {"time": "2026-12-01T10:00:00Z", "kind": "deposit", "amount": 50,
                                 "job_id": None, "model": "", "balance": 50},
                                {"time": "2026-12-01T10:00:01Z", "kind": "charge", "amount": -10,
                                 "job_id": "5a0c1d9e-0d6b-4f55-a7b2-3c1f7b0e9c11",
                                 "model": "linear_regression", "balance": 40}])
    start: datetime | None
    end: datetime | None
    opening_balance: int
    closing_balance: int
    opening_reserved: int = 0
    closing_reserved: int = 0
    lines: list[StatementLinePublic]


class BalanceUpdate(BaseModel):
    """Either `new_amount` (old clients: top up to this total) or `amount` (deposit)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"new_amount": 100}, {"amount": 50}]})
    new_amount: StrictInt | None = None
    amount: StrictInt | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> BalanceUpdate:
        if (self.new_amount is None) == (self.amount is None):
            raise ValueError("send exactly one of new_amount (a total) or amount (a deposit)")
        return self


class ModelPublic(BaseModel):
    model_config = _example(model_name="gradient_boosting", price=25, version="1",
                            metrics={"r2": {"mean": 0.925, "std": 0.024}}, description="...")
    model_name: str
    price: int
    version: str
    metrics: dict[str, dict[str, float]]
    description: str = ""
    explain_price: int | None = Field(None, description="the surcharge of `explain: true`, in "
                                      "credits (null: this version cannot explain)")
    interval_level: float | None = Field(None, description="the share of true prices the range "
                                         "of a result holds (coverage and width: `metrics`)")


class PredictorsPublic(BaseModel):
    model_config = _example(models=[{"model_name": "linear_regression", "price": 10,
                                     "version": "1", "metrics": {"r2": {"mean": 0.89, "std": 0.06}}}])
    models: list[ModelPublic]


class PredictCreate(BaseModel):
    model_config = _example(model_name="linear_regression", data=EXAMPLE_CAR)
    model_name: CleanText = Field(max_length=64)
    data: dict[str, Any]
    deadline_seconds: StrictInt | None = Field(
        None, ge=5, le=86400, description="fail and refund the job if it has no result by then "
        "(default: the service's JOB_DEADLINE_SECONDS, 300)")
    explain: bool = Field(False, description="also explain the price (each feature's effect); "
                          "costs the model's `explain_price` more, refunded if it fails")


class PredictAccepted(BaseModel):
    model_config = _example(job_id="5a0c1d9e-0d6b-4f55-a7b2-3c1f7b0e9c11", status="queued",
                            model_name="linear_regression", model_version="1", price=10, balance=40)
    job_id: UUID
    status: str = "queued"
    model_name: str
    model_version: str
    price: int
    balance: int
    deadline: datetime | None = Field(None, description="refunded if not finished by then")
    warnings: list[str] = Field(default_factory=list, description="e.g. a category never seen "
                                "in training, predicted as unseen")


class Interval(BaseModel):
    low: float
    high: float
    level: float = Field(description="the share of true prices such ranges held in the models' "
                         "repeated cross-validation (conformal CV+)")


class Contribution(BaseModel):
    feature: str
    value: JsonValue
    effect: float = Field(description="dollars this feature adds to (or takes from) the base")


class Explanation(BaseModel):
    base: float = Field(description="the price of an average car of the training data")
    contributions: list[Contribution] = Field(description="largest first; base + the effects "
                                              "= result")


class JobPublic(BaseModel):
    model_config = _example(job_id="5a0c1d9e-0d6b-4f55-a7b2-3c1f7b0e9c11", status="finished",
                            model_name="linear_regression", model_version="1", price=15,
                            created_at="2026-12-01T10:00:00Z", finished_at="2026-12-01T10:00:00.2Z",
                            result=15189.0, error=None,
                            interval={"low": 13410.5, "high": 17020.0, "level": 0.8},
                            explanation={"base": 11520.4, "contributions": [
                                {"feature": "enginesize", "value": 130, "effect": 2210.35},
                                {"feature": "brand", "value": "alfa-romero", "effect": 1458.25}]})
    job_id: UUID
    status: str
    model_name: str
    created_at: datetime
    finished_at: datetime | None
    result: float | None
    model_version: str
    price: int
    error: str | None = None
    started_at: datetime | None = None
    features: dict[str, Any] | None = None
    deadline: datetime | None = Field(None, description="failed and refunded if it has no "
                                      "result by then")
    stale: bool = Field(False, description="true when the read table had not caught up in time")
    interval: Interval | None = Field(None, description="the 80 % price range of a finished job")
    explanation: Explanation | None = Field(None, description="when `explain` was bought")
    explain: bool = Field(False, description="an explanation was bought with this job")


class BatchCreate(BaseModel):
    model_config = _example(model_name="linear_regression", cars=[EXAMPLE_CAR])
    model_name: CleanText = Field(max_length=64)
    cars: list[dict[str, Any]] = Field(min_length=1, max_length=10_000,
                                       description="up to 10,000 cars, each the 25 features")


class BatchAccepted(BaseModel):
    model_config = _example(batch_id="0b5e2f7c-3d1a-4c8e-9f20-6a7b8c9d0e1f",
                            model_name="linear_regression", model_version="2", price=10, rows=3,
                            total_price=30, balance=70)
    batch_id: UUID
    model_name: str
    model_version: str
    price: int = Field(description="per row")
    rows: int
    total_price: int
    balance: int


class BatchPublic(BaseModel):
    model_config = _example(batch_id="0b5e2f7c-3d1a-4c8e-9f20-6a7b8c9d0e1f",
                            model_name="linear_regression", model_version="2", price=10, rows=3,
                            total_price=30, done=2, failed=1, pending=0, refunded=10,
                            status="finished", source="csv", created_at="2026-12-01T10:00:00Z",
                            finished_at="2026-12-01T10:00:01Z")
    batch_id: UUID
    model_name: str
    model_version: str
    price: int = Field(description="per row")
    rows: int
    total_price: int
    done: int = Field(description="rows priced")
    failed: int = Field(description="rows that failed, each refunded")
    pending: int
    refunded: int = Field(description="credits given back for failed rows")
    status: str = Field(description="running, then finished once every row ended")
    source: str
    created_at: datetime
    finished_at: datetime | None


class JobQuery(BaseModel):
    model_config = _example(job_id="5a0c1d9e-0d6b-4f55-a7b2-3c1f7b0e9c11")
    job_id: CleanText = Field(max_length=100)


class HistoryPublic(BaseModel):
    model_config = _example(job_ids=["5a0c1d9e-0d6b-4f55-a7b2-3c1f7b0e9c11"], jobs=[],
                            next_cursor=None)
    job_ids: list[UUID]
    jobs: list[JobPublic]
    next_cursor: str | None
    stale: bool = False
    batches: list[BatchPublic] = Field(default_factory=list, description=(
        "fleet batches, newest first, one entry each (their rows: "
        "/predict/batch/{batch_id}/results.csv)"))


class RunningPublic(BaseModel):
    model_config = _example(jobs=[{"job_id": "5a0c1d9e-0d6b-4f55-a7b2-3c1f7b0e9c11",
                                   "status": "queued", "model_name": "random_forest",
                                   "model_version": "1", "price": 40,
                                   "created_at": "2026-12-01T10:00:00Z", "finished_at": None,
                                   "result": None}])
    jobs: list[JobPublic]
    stale: bool = False


class LedgerEntryPublic(BaseModel):
    model_config = _example(time="2026-12-01T10:00:00Z", type="Charged", amount=-25,
                            job_id="5a0c1d9e-0d6b-4f55-a7b2-3c1f7b0e9c11", balance=75,
                            detail="gradient_boosting")
    time: datetime
    type: str
    amount: int = Field(description="signed change of the available balance")
    job_id: UUID | None
    balance: int = Field(description="available after this event")
    detail: str
    credits: int = Field(0, description="the credits the event moved")
    reserved: int = Field(0, description="held for jobs not ended, after this event")
    promotional: int = Field(0, description="the promotional part of `balance`, after this event")


class ModelSpendPublic(BaseModel):
    model_config = _example(model="gradient_boosting", spent=50, on_hold=25, given_back=25)
    model: str
    spent: int = Field(description="credits of the model's jobs that finished")
    on_hold: int = Field(description="credits held for its jobs still running")
    given_back: int = Field(description="credits of its jobs that failed or expired, returned")


class AuditPublic(BaseModel):
    model_config = _example(as_of=None, entries=[], replayed_balance=75, projected_balance=75,
                            consistent=True, spend_per_model=[])
    as_of: datetime | None
    entries: list[LedgerEntryPublic]
    replayed_balance: int
    projected_balance: int | None
    consistent: bool
    spend_per_model: list[ModelSpendPublic] = Field(
        default_factory=list, description="what the ledger paid per model, by the billing rules")


WebhookEvent = Literal["job.ended", "balance.low"]


class WebhookCreate(BaseModel):
    model_config = _example(url="https://example.com/carprice-hook", events=["job.ended", "balance.low"],
                            balance_below=50)
    url: CleanText = Field(max_length=2000, description="where deliveries are POSTed")
    events: list[WebhookEvent] = Field(min_length=1, max_length=2, description=(
        "job.ended: a job finished or failed; balance.low: the balance fell below balance_below"))
    balance_below: StrictInt | None = Field(None, ge=1, le=10**12, description="the threshold of balance.low")

    @model_validator(mode="after")
    def _threshold(self) -> WebhookCreate:
        if len(set(self.events)) != len(self.events):
            raise ValueError("events: each event at most once")
        if ("balance.low" in self.events) != (self.balance_below is not None):
            raise ValueError("balance_below: required with balance.low, and only with it")
        return self


class WebhookPublic(BaseModel):
    model_config = _example(webhook_id="0b7e6c52-5bd5-4a51-9d62-0fbd3c1b2f6e",
                            url="https://example.com/carprice-hook", events=["job.ended"],
                            balance_below=None, created_at="2026-12-01T10:00:00Z")
    webhook_id: UUID
    url: str
    events: list[str]
    balance_below: int | None
    created_at: datetime


class WebhookCreated(WebhookPublic):
    model_config = _example(webhook_id="0b7e6c52-5bd5-4a51-9d62-0fbd3c1b2f6e",
                            url="https://example.com/carprice-hook", events=["job.ended"],
                            balance_below=None, created_at="2026-12-01T10:00:00Z",
                            secret="whsec_4f1c...")
    secret: str = Field(description="your signing secret (the same for all your webhooks): check "
                        "Carprice-Signature with it")


class WebhooksPublic(BaseModel):
    model_config = _example(webhooks=[])
    webhooks: list[WebhookPublic]


class WebhookSecretPublic(BaseModel):
    model_config = _example(secret="whsec_4f1c...")
    secret: str


class DeliveryPublic(BaseModel):
    model_config = _example(delivery_id="c3f7c0c2-1d54-4a8e-b0a4-7d0a3c0f5b9e", event="job.ended",
                            status="delivered", attempts=1, last_status=200, last_error=None,
                            created_at="2026-12-01T10:00:00Z",
                            next_attempt_at="2026-12-01T10:00:00Z",
                            delivered_at="2026-12-01T10:00:00.1Z",
                            payload={"job_id": "5a0c1d9e-0d6b-4f55-a7b2-3c1f7b0e9c11",
                                     "status": "finished", "result": 15189.0})
    delivery_id: UUID
    event: str
    status: str = Field(description="pending (being retried), delivered, or failed (gave up)")
    attempts: int
    last_status: int | None
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None
    payload: dict[str, Any]


class DeliveriesPublic(BaseModel):
    model_config = _example(deliveries=[])
    deliveries: list[DeliveryPublic]


class ReceiptModel(BaseModel):
    name: str
    version: str
    card_sha256: str | None = Field(description="sha256 of the version's card file")
    artifact_sha256: str | None = Field(description="sha256 of the fitted model's file")


class ReceiptCredits(BaseModel):
    price: int = Field(description="what the job was priced at when it was requested")
    surcharge: int = Field(description="the explanation's part of `price`")
    held: int = Field(description="reserved at submit")
    paid: int = Field(description="captured (spent)")
    released: int = Field(description="given back (a failure, an expiry, an undelivered explanation)")
    forfeited: int = Field(description="held from grants that expired meanwhile: not given back")
    on_hold: int = Field(description="still reserved (the job has not ended)")


class ReceiptEvent(BaseModel):
    id: str = Field(description="aggregate id @ version")
    aggregate: Literal["job", "wallet"]
    aggregate_id: str
    version: int
    position: int = Field(description="the event's position in the store's log")
    type: str
    time: str = Field(description="ISO-8601")
    sha256: str = Field(description="sha256 of the event as stored")


class ReceiptPublic(BaseModel):
    """The receipt of a job; `carprice audit receipt JOB_ID FILE` checks it against the store."""

    model_config = _example(
        receipt_version=1, job_id="5a0c1d9e-0d6b-4f55-a7b2-3c1f7b0e9c11",
        user_id="1f0e7a43-8a8c-5d3e-9b7e-2f4c6a1b0d22", batch_id=None, batch_row=None,
        status="finished", requested_at="2026-12-01T10:00:00+00:00",
        ended_at="2026-12-01T10:00:00.120000+00:00",
        model={"name": "linear_regression", "version": "1", "card_sha256": "9c1e…",
               "artifact_sha256": "4b7a…"},
        input_sha256="e3b0…", explain=False,
        credits={"price": 5, "surcharge": 0, "held": 5, "paid": 5, "released": 0, "forfeited": 0,
                 "on_hold": 0},
        result={"price": 13495.0, "interval": {"low": 11900.0, "high": 15100.0, "level": 0.8}},
        error=None, events=[{"id": "5a0c1d9e-0d6b-4f55-a7b2-3c1f7b0e9c11@1", "aggregate": "job",
                             "aggregate_id": "5a0c1d9e-0d6b-4f55-a7b2-3c1f7b0e9c11", "version": 1,
                             "position": 1041, "type": "job.requested.v1",
                             "time": "2026-12-01T10:00:00+00:00", "sha256": "0f3d…"}])
    receipt_version: int
    # ids and times are the store's own strings, so that a receipt compares byte for byte
    job_id: str
    user_id: str
    batch_id: str | None
    batch_row: int | None
    status: str
    requested_at: str = Field(description="ISO-8601")
    ended_at: str | None = Field(description="ISO-8601")
    model: ReceiptModel
    input_sha256: str = Field(description="sha256 of the input as JSON with sorted keys and no "
                              "spaces (UTF-8)")
    explain: bool
    credits: ReceiptCredits
    result: dict[str, Any] | None = Field(description="the price and its range")
    error: dict[str, Any] | None = Field(description="why the job failed: code and reason")
    events: list[ReceiptEvent] = Field(description="every event of the job, and of the wallet "
                                       "for it, in the order of the log")
    api_key: dict[str, str] | None = Field(None, description="the API key that spent the credits "
                                           "(key_id, and name as \"name (prefix)\"); absent when "
                                           "you did, signed in")


KeyScope = Literal["predict", "read", "batch", "webhooks"]


class KeyCreate(BaseModel):
    model_config = _example(name="dealer DMS", scopes=["predict", "read"], rate_limit_per_minute=600)
    name: CleanText = Field(min_length=1, max_length=100, description="what the key is for")
    scopes: list[KeyScope] = Field(min_length=1, max_length=4, description=(
        "predict: submit jobs and read them; read: balance, statements, history, jobs, models; "
        "batch: fleet batches; webhooks: manage webhooks"))
    rate_limit_per_minute: StrictInt = Field(600, ge=1, le=100_000,
                                             description="requests per minute this key may make")


class KeyPublic(BaseModel):
    model_config = _example(key_id="6f0c3a1e-7d2b-4c59-9b0e-2f6a1d5c8e34", prefix="cpk_6f0c3a1e",
                            name="dealer DMS", scopes=["predict", "read"], rate_limit_per_minute=600,
                            created_at="2026-12-01T10:00:00Z", last_used_at=None, revoked_at=None)
    key_id: UUID
    prefix: str = Field(description="the secret's first characters, to recognise it")
    name: str
    scopes: list[str]
    rate_limit_per_minute: int
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class KeyCreated(KeyPublic):
    model_config = _example(key_id="6f0c3a1e-7d2b-4c59-9b0e-2f6a1d5c8e34", prefix="cpk_6f0c3a1e",
                            name="dealer DMS", scopes=["predict", "read"], rate_limit_per_minute=600,
                            created_at="2026-12-01T10:00:00Z", last_used_at=None, revoked_at=None,
                            secret="cpk_6f0c3a1e...")
    secret: str = Field(description="send it as Authorization: Bearer <secret>; shown only now")


class KeysPublic(BaseModel):
    model_config = _example(keys=[])
    keys: list[KeyPublic]


class SaleCreate(BaseModel):
    model_config = _example(sold_price=13250)
    sold_price: float = Field(gt=0, le=100_000_000, allow_inf_nan=False,
                              description="what the car sold for, in dollars")


class SalePublic(BaseModel):
    model_config = _example(job_id="5a0c1d9e-0d6b-4f55-a7b2-3c1f7b0e9c11", sold_price=13250.0,
                            superseded=None, recorded=True)
    job_id: UUID
    sold_price: float
    superseded: float | None = Field(description="the price this report replaces, if any")
    recorded: bool = Field(description="false: this very price was the latest report already")


class LiveVersionPublic(BaseModel):
    model_config = _example(version="1", reports=42, mae=1650.2, mae_ci=[1320.5, 1979.9], mape=0.121,
                            mape_ci=[0.098, 0.144], ranged=42, coverage=0.786,
                            coverage_ci=[0.639, 0.883])
    version: str
    reports: int = Field(description="finished jobs whose car's sale price was reported")
    mae: float | None = Field(description="mean absolute error against the sale prices, dollars")
    mae_ci: tuple[float, float] | None = Field(description="its 95 % interval")
    mape: float | None = Field(description="mean absolute percentage error (0.1 = 10 %)")
    mape_ci: tuple[float, float] | None
    ranged: int = Field(description="reports whose job had an 80 % range")
    coverage: float | None = Field(description="the share of those sale prices inside the range")
    coverage_ci: tuple[float, float] | None = Field(description="its 95 % (Wilson) interval")


class LivePublic(BaseModel):
    model_config = _example(model_name="linear_regression", versions=[])
    model_name: str
    versions: list[LiveVersionPublic]


class ShadowComparisonPublic(BaseModel):
    model_config = _example(
        version="2", champion_version="1", shadowed=180, failed=0, median_abs_difference=412.5,
        median_difference=-35.0, reports=24, mae=1480.1, mae_ci=[1105.3, 1854.9], champion_mae=1650.2,
        champion_mae_ci=[1270.0, 2030.4], coverage=0.792, coverage_ci=[0.595, 0.908],
        champion_coverage=0.75, champion_coverage_ci=[0.551, 0.880])
    version: str = Field(description="the challenger")
    champion_version: str = Field(description="the version that priced (and billed) the same jobs")
    shadowed: int = Field(description="jobs the challenger priced in the shadow")
    failed: int = Field(description="of those, the ones it could not price")
    median_abs_difference: float | None = Field(description="median |challenger - champion|, dollars")
    median_difference: float | None = Field(description="median challenger - champion (above 0: "
                                            "the challenger asks more)")
    reports: int = Field(description="shadowed jobs whose car's sale price was reported")
    mae: float | None = Field(description="the challenger's mean absolute error on those")
    mae_ci: tuple[float, float] | None
    champion_mae: float | None = Field(description="the champion's, on the same cars")
    champion_mae_ci: tuple[float, float] | None
    coverage: float | None = Field(description="the share of those sale prices inside the "
                                   "challenger's 80 % range")
    coverage_ci: tuple[float, float] | None
    champion_coverage: float | None
    champion_coverage_ci: tuple[float, float] | None


class ChallengerCardPublic(BaseModel):
    model_config = _example(version="2", cv_r2=0.93, cv_r2_std=0.02, cv_mae=1410.0, data_file="dealer.csv",
                            training_rows=480, created_at="2026-12-07T20:00:00+00:00")
    version: str
    cv_r2: float | None = Field(description="cross-validated R² (mean over folds)")
    cv_r2_std: float | None
    cv_mae: float | None = Field(description="cross-validated MAE, dollars")
    data_file: str = Field(description="the CSV it was trained on (empty: the shipped dataset)")
    training_rows: int
    created_at: str


class ChallengersPublic(BaseModel):
    model_config = _example(model_name="linear_regression", champion=None, challengers=[],
                            shadow_share=0.1, comparisons=[])
    model_name: str
    champion: ChallengerCardPublic | None = Field(description="the version serving paid jobs")
    challengers: list[ChallengerCardPublic] = Field(description="newer versions, priced in the shadow")
    shadow_share: float = Field(description="the share of paid jobs each challenger also prices")
    comparisons: list[ShadowComparisonPublic]


class DriftFeaturePublic(BaseModel):
    model_config = _example(feature="horsepower", psi=0.41, unseen_share=0.0)
    feature: str
    psi: float = Field(description="population stability index, training data against the recent cars")
    unseen_share: float = Field(description="of the recent cars, the share with a category the "
                                "training data never had (0 for numbers)")


class DriftPublic(BaseModel):
    model_config = _example(model_name="linear_regression", window=1000, cars=640, threshold=0.25,
                            min_cars=100, drifting=["horsepower"], features=[
                                {"feature": "horsepower", "psi": 0.41, "unseen_share": 0.0},
                                {"feature": "brand", "psi": 0.08, "unseen_share": 0.02}])
    model_name: str
    window: int = Field(description="the most recent finished jobs looked at")
    cars: int = Field(description="how many there were")
    threshold: float
    min_cars: int = Field(description="below this many cars, no feature is flagged (DRIFT_MIN_CARS)")
    drifting: list[str] = Field(description="the features above the threshold")
    features: list[DriftFeaturePublic] = Field(description="every feature, the most drifted first")
