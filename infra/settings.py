"""Process settings, read from the environment (and `.env`) once per process."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    """Everything a carprice process may be configured with."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    # embedded: services started by the project, secrets generated under `home`.
    # production: everything external, secrets required.
    mode: Literal["embedded", "production"] = Field("embedded", alias="CARPRICE_MODE")
    home: Path = Field(REPO_ROOT / ".carprice", alias="CARPRICE_HOME")
    model_registry_dir: Path | None = Field(None, alias="MODEL_REGISTRY_DIR")
    data_dir: Path = Field(REPO_ROOT / "data", alias="CARPRICE_DATA_DIR")

    database_url: str | None = Field(None, alias="DATABASE_URL")
    db_pool_size: int = Field(10, alias="DB_POOL_SIZE")
    # Concurrent commands share insert transactions (see commands/group_commit.py).
    group_commit: bool = Field(True, alias="GROUP_COMMIT")
    kafka_bootstrap_servers: str | None = Field(None, alias="KAFKA_BOOTSTRAP_SERVERS")
    kafka_impl: Literal["tansu", "apache"] = Field("tansu", alias="KAFKA_IMPL")
    kafka_partitions: int = Field(12, alias="KAFKA_PARTITIONS")
    kafka_topic_prefix: str = Field("carprice", alias="KAFKA_TOPIC_PREFIX")
    # Appended to consumer group names (a benchmark run gets groups of its own).
    kafka_group_suffix: str = Field("", alias="KAFKA_GROUP_SUFFIX")

    # Inference micro-batches: up to N requests or T milliseconds.
    inference_batch_size: int = Field(64, alias="INFERENCE_BATCH_SIZE")
    inference_batch_ms: int = Field(20, alias="INFERENCE_BATCH_MS")

    jwt_secret: str | None = Field(None, alias="JWT_SECRET")

    @property
    def events_topic(self) -> str:
        """The topic every event is published to (key = user id)."""
        return f"{self.kafka_topic_prefix}.events"

    @property
    def dead_letter_topic(self) -> str:
        """Where consumers put messages they cannot decode."""
        return f"{self.kafka_topic_prefix}.events.dlq"

    def group(self, role: str) -> str:
        """The consumer group of a role: `inference` or `projections`."""
        return f"{self.kafka_topic_prefix}-{role}{self.kafka_group_suffix}"

    @property
    def registry_dir(self) -> Path:
        """Where model artifacts and cards live."""
        return self.model_registry_dir or self.home / "models"
