"""Service settings, read once from the environment (prefix ``MFA_``) and an optional ``.env``."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

DEFAULT_DATABASE_PATH = Path("var") / "mfa.db"
REPOSITORY_DATASETS = Path(__file__).resolve().parents[1] / "datasets"


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class Settings(BaseSettings):
    """Everything configurable, with defaults that suit one developer's machine.

    Production refuses the development conveniences (GraphiQL, the embedded SQLite file) so a
    deployment cannot run on them by accident.
    """

    model_config = SettingsConfigDict(env_prefix="MFA_", env_file=".env", extra="ignore")

    environment: Environment = Environment.DEVELOPMENT
    database_url: str = f"sqlite:///{DEFAULT_DATABASE_PATH}"
    datasets_dir: Path = Field(
        default=REPOSITORY_DATASETS,
        description="Folder holding datapackage.json, the material catalogue and the sample park.",
    )
    graphiql: bool = True
    sql_echo: bool = False
    transfer_tolerance: float = Field(
        default=0.02,
        ge=0,
        lt=1,
        description="Relative difference |q1 - q2| / max(q1, q2) up to which the two sides' "
        "reports of one transfer count as confirming each other.",
    )
    balance_tolerance: float = Field(
        default=0.05,
        ge=0,
        lt=1,
        description="Relative mass-balance residual |in - out - stock change| / throughput "
        "up to which an enterprise's books count as balanced.",
    )
    max_page_size: int = Field(default=100, ge=1, le=1000)
    max_query_depth: int = Field(default=12, ge=2)
    max_query_tokens: int = Field(default=5000, ge=100)
    max_query_aliases: int = Field(default=30, ge=1)
    max_batch_size: int = Field(default=10_000, ge=1)
    max_chain_depth: int = Field(default=10, ge=1)
    dev_caller: str = Field(
        default="developer",
        description="Identity recorded as the author of writes while no authentication is "
        "configured (development only).",
    )

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, url: str) -> str:
        try:
            backend = make_url(url).get_backend_name()
        except ArgumentError as exc:
            raise ValueError(f"cannot parse database URL {url!r}") from exc
        if backend not in ("sqlite", "postgresql"):
            raise ValueError(
                f"unsupported database {backend!r}: use sqlite:///path.db or "
                "postgresql://user@host/db"
            )
        return url

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.environment is Environment.PRODUCTION:
            problems = []
            if self.graphiql:
                problems.append("MFA_GRAPHIQL must be false in production")
            if self.database_url.startswith("sqlite"):
                problems.append("MFA_DATABASE_URL must name PostgreSQL in production")
            if problems:
                raise ValueError("; ".join(problems))
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; tests build their own ``Settings`` instead of patching this."""
    return Settings()
