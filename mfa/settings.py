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
DEVELOPMENT_JWT_SECRET = "development-only-secret-change-me-0123456789"


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
    import_dir: Path = Field(
        default=Path("var") / "imports",
        description="Folder keeping uploaded import files (for importCommit) and the files "
        "of their rejected rows.",
    )
    import_max_bytes: int = Field(
        default=128 * 2**20,
        ge=1024,
        description="Largest import file accepted; a 1,000,000-row generic CSV is ~90 MB.",
    )
    response_cache: bool = Field(
        default=True,
        description="Cache query responses keyed on the parks' versions (mfa.api.cache).",
    )
    compiled_flow_pages: bool = Field(
        default=True,
        description="Answer queries of flow pages with a compiled plan instead of "
        "per-field execution (mfa.api.compiled); false: always the executor.",
    )
    cache_url: str | None = Field(
        default=None,
        description="redis://host:port/db to share the response cache between workers; "
        "unset: a bounded in-process LRU.",
    )
    cache_prefix: str = Field(default="mfa:", description="Prefix of the cache's Redis keys.")
    cache_ttl: int = Field(
        default=86_400, ge=1, description="Seconds a Redis entry of old versions lingers."
    )
    cache_max_entries: int = Field(default=4096, ge=1, description="Size of the in-process LRU.")
    max_query_cost: int = Field(
        default=1000,
        ge=1,
        description="Price limit of one operation (see mfa.api.limits: 1 = one statement, an "
        "LCA solve 50-100, multiplied by enclosing page sizes).",
    )
    max_request_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=1024,
        description="Largest request body accepted (413 beyond); a flowsRecord batch of "
        "max_batch_size rows is about 3 MB of JSON.",
    )
    execution_timeout: float = Field(
        default=60.0,
        gt=0,
        description="Seconds an operation may run before it is stopped (503, code TIMEOUT).",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description='Origins allowed by CORS, e.g. ["https://dashboard.example"]; none by '
        "default (CORS off).",
    )
    jwt_secret: str = Field(
        default=DEVELOPMENT_JWT_SECRET,
        min_length=32,
        description="HS256 key signing access tokens; production refuses the default.",
    )
    token_lifetime: int = Field(
        default=3600, ge=60, le=86_400, description="Seconds an access token stays valid."
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
            if self.jwt_secret == DEVELOPMENT_JWT_SECRET:
                problems.append("MFA_JWT_SECRET must be set to a secret of your own in production")
            if problems:
                raise ValueError("; ".join(problems))
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; tests build their own ``Settings`` instead of patching this."""
    return Settings()
