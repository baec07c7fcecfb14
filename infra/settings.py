"""Process settings, read from the environment (and `.env`) once per process."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from infra.webhook_http import Targets


def _home() -> Path:
    return Path.cwd() / ".carprice"


class Settings(BaseSettings):
    """Everything a carprice process may be configured with."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    # embedded: services started by the project, secrets generated under `home`.
    # production: everything external, secrets required.
    mode: Literal["embedded", "production"] = Field("embedded", alias="CARPRICE_MODE")
    # state of the embedded mode (database, broker, models, secrets): ./.carprice by default
    home: Path = Field(default_factory=_home, alias="CARPRICE_HOME")
    model_registry_dir: Path | None = Field(None, alias="MODEL_REGISTRY_DIR")
    # the training data (default: the dataset shipped with model_registry)
    data_dir: Path | None = Field(None, alias="CARPRICE_DATA_DIR")
    # the repeated K-fold CV that `carprice train` (and the first `up`) measures each model
    # with, as FOLDSxREPEATS; fewer repeats train faster and measure the cards more coarsely
    train_cv: str = Field("5x5", pattern=r"^([2-9]|[1-9][0-9])x([1-9][0-9]?)$", alias="CARPRICE_TRAIN_CV")

    database_url: str | None = Field(None, alias="DATABASE_URL")
    db_pool_size: int = Field(10, alias="DB_POOL_SIZE")
    # Concurrent commands share insert transactions (see commands/group_commit.py).
    group_commit: bool = Field(True, alias="GROUP_COMMIT")
    kafka_bootstrap_servers: str | None = Field(None, alias="KAFKA_BOOTSTRAP_SERVERS")
    # the embedded broker: one Apache Kafka node (the default: its fetch cost and memory do not
    # grow with history, and it keeps its data across restarts), Tansu 0.6 with memory
    # storage, or a 3-node Apache Kafka cluster (README: why)
    kafka_impl: Literal["tansu", "apache", "apache-cluster"] = Field("apache", alias="KAFKA_IMPL")
    kafka_partitions: int = Field(12, alias="KAFKA_PARTITIONS")
    # How long the broker may hold a fetch: Apache Kafka answers as soon as data arrives, so a
    # long wait costs no latency; Tansu 0.6 always waits it out, so it is kept short there
    # (default: 10 ms on Tansu, 500 ms otherwise). Idle consumers sleep on a wake-up signal.
    kafka_fetch_max_wait_ms: int | None = Field(None, ge=0, alias="KAFKA_FETCH_MAX_WAIT_MS")
    consumer_idle_after_seconds: float = Field(1.0, ge=0, alias="CONSUMER_IDLE_AFTER_SECONDS")
    consumer_idle_poll_seconds: float = Field(15.0, gt=0, alias="CONSUMER_IDLE_POLL_SECONDS")
    # Under load a consumer commits its offsets at most this often (at once when it runs dry):
    # what a crash leaves uncommitted is delivered again, and the handlers are idempotent.
    consumer_commit_seconds: float = Field(1.0, ge=0, alias="CONSUMER_COMMIT_SECONDS")
    # How often an inference member renews its partition leases (infra/leases.py): a dead
    # member's partitions are taken over, and a new member gets its share, within about this.
    consumer_lease_seconds: float = Field(0.5, gt=0, alias="CONSUMER_LEASE_SECONDS")
    # replicas of each partition of new topics (3 on a cluster; min.insync.replicas is 2 there)
    kafka_replication_factor: int = Field(1, ge=1, alias="KAFKA_REPLICATION_FACTOR")
    kafka_topic_prefix: str = Field("carprice", alias="KAFKA_TOPIC_PREFIX")
    # Appended to the consumers' names: their leases and positions (a benchmark run gets its own).
    kafka_group_suffix: str = Field("", alias="KAFKA_GROUP_SUFFIX")

    # Inference micro-batches: up to N requests, or what arrived within T milliseconds of the
    # first. 0 takes what one poll returned: under load a poll brings many records anyway, and
    # waiting for more costs latency and extra fetches (`carprice bench api`: 0 ms beat 20 ms).
    inference_batch_size: int = Field(64, ge=1, alias="INFERENCE_BATCH_SIZE")
    inference_batch_ms: int = Field(0, ge=0, alias="INFERENCE_BATCH_MS")
    # The projector's batches (one transaction each): the same rule, up to 1000 events.
    projector_batch_ms: int = Field(0, ge=0, alias="PROJECTOR_BATCH_MS")

    # The consumers' failure policy (consumers/loop.py): tries of a batch, then of each of its
    # messages, before a message is dead-lettered; the first backoff (it doubles).
    consumer_batch_attempts: int = Field(3, ge=1, alias="CONSUMER_BATCH_ATTEMPTS")
    consumer_message_attempts: int = Field(2, ge=1, alias="CONSUMER_MESSAGE_ATTEMPTS")
    consumer_backoff_ms: int = Field(200, ge=0, alias="CONSUMER_BACKOFF_MS")

    # Every job ends: without an outcome by its deadline the reaper fails and refunds it.
    job_deadline_seconds: int = Field(300, ge=5, alias="JOB_DEADLINE_SECONDS")
    reaper_interval_seconds: float = Field(1.0, gt=0, alias="REAPER_INTERVAL_SECONDS")
    # How often the relay checks that the broker still holds what it acknowledged.
    relay_check_seconds: float = Field(5.0, gt=0, alias="RELAY_CHECK_SECONDS")
    # How long a command waits for the event store before it answers 503.
    commit_timeout_seconds: float = Field(30.0, gt=0, alias="COMMIT_TIMEOUT_SECONDS")
    # A projection with messages waiting that has not advanced for this long is stalled:
    # /readyz, `carprice projections status`, a metric and the dashboard say so.
    projection_stall_seconds: float = Field(10.0, gt=0, alias="PROJECTION_STALL_SECONDS")
    # How long a read waits for the read side to reflect the caller's own write.
    read_wait_seconds: float = Field(1.0, ge=0, le=10, alias="READ_WAIT_SECONDS")

    # Sign-in and sign-up throttling, per client address (shared by every API replica).
    signin_failures_per_account: int = Field(5, ge=1, alias="SIGNIN_FAILURES_PER_ACCOUNT")
    signin_failures_per_client: int = Field(50, ge=1, alias="SIGNIN_FAILURES_PER_CLIENT")
    # every sign-in, right or wrong, per client and window: each costs a 64 MiB argon2 hash
    signins_per_client: int = Field(60, ge=1, alias="SIGNINS_PER_CLIENT")
    signin_window_seconds: int = Field(60, ge=1, alias="SIGNIN_WINDOW_SECONDS")
    signups_per_client: int = Field(30, ge=1, alias="SIGNUPS_PER_CLIENT")
    signup_window_seconds: int = Field(600, ge=1, alias="SIGNUP_WINDOW_SECONDS")
    # Webhooks: the POST timeout; attempts before a delivery is given up; the first backoff
    # (it doubles, up to the maximum); webhooks per user; the private targets an operator
    # allows (`HOST[:PORT]` or a CIDR, comma-separated; none by default, in every mode: no
    # account can make carprice POST to loopback, private or link-local addresses otherwise).
    webhook_timeout_seconds: float = Field(5.0, gt=0, le=60, alias="WEBHOOK_TIMEOUT_SECONDS")
    webhook_max_attempts: int = Field(10, ge=1, alias="WEBHOOK_MAX_ATTEMPTS")
    webhook_backoff_seconds: float = Field(2.0, gt=0, alias="WEBHOOK_BACKOFF_SECONDS")
    webhook_backoff_max_seconds: float = Field(3600.0, gt=0, alias="WEBHOOK_BACKOFF_MAX_SECONDS")
    webhooks_per_user: int = Field(10, ge=1, alias="WEBHOOKS_PER_USER")
    # drift: each feature's PSI between the training data and the last DRIFT_WINDOW priced
    # cars of a model; above DRIFT_PSI_THRESHOLD it is logged as a warning
    drift_window: int = Field(1000, ge=10, le=100_000, alias="DRIFT_WINDOW")
    drift_psi_threshold: float = Field(0.25, gt=0, alias="DRIFT_PSI_THRESHOLD")
    # fewer priced cars than this say nothing about a population: reported, never flagged
    drift_min_cars: int = Field(100, ge=1, alias="DRIFT_MIN_CARS")
    # how long an API process keeps a model's drift report before measuring it again
    drift_cache_seconds: float = Field(60.0, ge=0, alias="DRIFT_CACHE_SECONDS")
    # the share of paid jobs each challenger also prices, in the shadow (unbilled, unseen)
    shadow_share: float = Field(0.1, ge=0, le=1, alias="SHADOW_SHARE")
    webhook_allowed_targets: str = Field("", alias="WEBHOOK_ALLOWED_TARGETS")
    # Peers whose X-Forwarded-For is believed (a reverse proxy in front of the API; uvicorn's
    # own setting): none by default, so a client cannot pick the address it is throttled as.
    forwarded_allow_ips: str = Field("", alias="FORWARDED_ALLOW_IPS")
    # The dashboard's proof that the X-Forwarded-For it sends is the browser's address: a
    # secret shared by the API and the dashboard (`carprice up` makes one per run).
    proxy_token: str | None = Field(None, alias="CARPRICE_PROXY_TOKEN")

    jwt_secret: str | None = Field(None, alias="JWT_SECRET")
    # /metrics: with a token, only `Authorization: Bearer <token>` reads it; without one it is
    # open in the embedded mode and not served at all in production (compose sets a token)
    metrics_token: str | None = Field(None, alias="METRICS_TOKEN")

    # logs: console lines in the embedded mode, JSON lines otherwise, unless set
    log_format: Literal["json", "console"] | None = Field(None, alias="LOG_FORMAT")
    log_level: str = Field("INFO", alias="LOG_LEVEL")
    kafka_log_level: str = Field("WARNING", alias="KAFKA_LOG_LEVEL")
    # export spans over OTLP/HTTP (needs the `otlp` extra); unset: trace ids in events and logs only
    otel_exporter_otlp_endpoint: str | None = Field(None, alias="OTEL_EXPORTER_OTLP_ENDPOINT")

    @field_validator("log_format", "otel_exporter_otlp_endpoint", "database_url",
                     "kafka_bootstrap_servers", "jwt_secret", "metrics_token", "proxy_token",
                     mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # compose passes `${VAR:-}`: an empty variable means "not set"
        return None if value == "" else value

    @property
    def logs_as_json(self) -> bool:
        """JSON lines unless LOG_FORMAT=console (or, unset, in the embedded mode)."""
        return self.log_format == "json" if self.log_format else self.mode != "embedded"

    @property
    def cv(self) -> tuple[int, int]:
        """(folds, repeats) of the training CV (see train_cv)."""
        folds, _, repeats = self.train_cv.partition("x")
        return int(folds), int(repeats)

    @property
    def webhook_targets(self) -> Targets:
        """The private webhook targets the operator allows (see webhook_allowed_targets)."""
        return Targets.parse(self.webhook_allowed_targets)

    @property
    def fetch_max_wait_ms(self) -> int:
        """The consumers' fetch wait (see kafka_fetch_max_wait_ms)."""
        if self.kafka_fetch_max_wait_ms is not None:
            return self.kafka_fetch_max_wait_ms
        return 10 if self.kafka_impl == "tansu" else 500

    @property
    def events_topic(self) -> str:
        """The topic every event is published to (key = user id)."""
        return f"{self.kafka_topic_prefix}.events"

    @property
    def dead_letter_topic(self) -> str:
        """Where consumers put messages they cannot decode."""
        return f"{self.kafka_topic_prefix}.events.dlq"

    def group(self, role: str) -> str:
        """The name a role's members share (their leases and positions): `inference`."""
        return f"{self.kafka_topic_prefix}-{role}{self.kafka_group_suffix}"

    @property
    def registry_dir(self) -> Path:
        """Where model artifacts and cards live."""
        return self.model_registry_dir or self.home / "models"
