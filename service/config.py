"""Service settings from the environment (``ABCSCALE_*``), checked once at startup."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# An origin as browsers send it in the Origin header: scheme, host and optional port, nothing after.
_ORIGIN = re.compile(r"^https?://[^/?#@\s]+$")
#: a PostgreSQL URL naming no driver (postgres:// or postgresql://, any letter case, surrounding spaces)
_POSTGRES = re.compile(r"^\s*postgres(?:ql)?://", re.IGNORECASE)


class Settings(BaseSettings):
    """``ABCSCALE_DATABASE_URL``, ``ABCSCALE_DATA_DIR``, ``ABCSCALE_API_TOKEN``, ``ABCSCALE_READ_TOKEN``,
    ``ABCSCALE_PROTECT_READS``, ``ABCSCALE_CORS_ORIGINS``, ``ABCSCALE_MAX_UPLOAD_MB``, ``ABCSCALE_MAX_ROWS``,
    ``ABCSCALE_MAX_CELLS``, ``ABCSCALE_MAX_JSON_DEPTH``, ``ABCSCALE_PLOT_DIR``, ``ABCSCALE_PLOT_WORKERS``,
    ``ABCSCALE_PLOT_WAIT_S``."""

    model_config = SettingsConfigDict(env_prefix="ABCSCALE_", extra="ignore")

    data_dir: Path = Field(Path("abcscale-data"), description="where the default SQLite file lives")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default sqlite:///<data_dir>/abcscale.db")
    api_token: SecretStr | None = Field(None, description="when set, writes need 'Authorization: Bearer <token>'")
    # Reads are open by default (a team's internal service); either of these closes every /v1 route.
    read_token: SecretStr | None = Field(None, description="when set, /v1 reads need it or the write token")
    protect_reads: bool = Field(False, description="reads need a token (the write token when no read token)")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        [], description="origins a browser page may call the API from (comma-separated); none by default")
    max_upload_mb: float = Field(50.0, gt=0, allow_inf_nan=False, description="request body cap, MiB")
    # The body cap does not bound memory: a 139 KB parquet can decode to 10 million rows. These do.
    max_rows: int = Field(1_000_000, gt=0, description="most rows a table to fit may hold once decoded")
    max_cells: int = Field(20_000_000, gt=0, description="most cells (rows x columns) of a decoded table")
    # json.loads recurses per level (a RecursionError near 1000); the bodies of this API need fewer than 5.
    max_json_depth: int = Field(64, ge=4, le=500, description="deepest nesting accepted in a JSON body")
    # Rendered plots are a cache on disk, never rows of the database: a GET writes nothing there.
    plot_dir: Path | None = Field(None, description="plot cache folder; default <data_dir>/plots")
    plot_workers: int = Field(2, ge=1, le=64, description="processes rendering plots")
    plot_wait_s: float = Field(10.0, ge=0, le=300, allow_inf_nan=False,
                               description="how long a plot GET waits for a first render before a 202")

    @field_validator("api_token", "read_token", mode="before")
    @classmethod
    def _strip_token(cls, value: object) -> object:
        # a secret file's trailing newline (ABCSCALE_API_TOKEN=$(cat token), a mounted secret) was kept: no client
        # can send it in a header, so every write was a 403 (a review); `abcscale check --token` strips it too
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        return value.strip() if isinstance(value, str) else value

    @field_validator("data_dir", "plot_dir", mode="before")
    @classmethod
    def _not_empty(cls, value: object) -> object:
        # Path("") is the working directory: an unset variable in `ABCSCALE_DATA_DIR=$DIR` served ./abcscale.db (a
        # review); "set but empty" as the tokens and the database URL say it
        if isinstance(value, str) and not value.strip():
            raise ValueError("set but empty (an unset variable?); unset it or give a folder")
        return value

    @field_validator("data_dir", "plot_dir")
    @classmethod
    def _home(cls, value: Path | None) -> Path | None:
        # "~/abcscale" made the folder at the expanded path while SQLite opened the literal one (a review)
        return None if value is None else value.expanduser()

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        return [o.strip() for o in value.split(",") if o.strip()] if isinstance(value, str) else value

    @field_validator("cors_origins")
    @classmethod
    def _check_origins(cls, origins: list[str]) -> list[str]:
        # "*" would also trust every page for writes (the cross-origin check below): list the origins instead.
        origins = [o.removesuffix("/").lower() for o in origins]  # as browsers send it: no slash, lower case
        for origin in origins:
            if not _ORIGIN.match(origin):
                raise ValueError(f"{origin!r} is not an origin like https://app.example.com[:port] (no '*', no path)")
        return origins

    @model_validator(mode="after")
    def _check(self) -> Settings:
        # An empty token would make every write look authorised to a careless comparison: refuse to start.
        if self.api_token is not None and not self.api_token.get_secret_value().strip():
            raise ValueError("ABCSCALE_API_TOKEN is set but empty; unset it or give a real token")
        if self.read_token is not None and not self.read_token.get_secret_value().strip():
            raise ValueError("ABCSCALE_READ_TOKEN is set but empty; unset it or give a real token")
        for name, token in (("ABCSCALE_API_TOKEN", self.api_token), ("ABCSCALE_READ_TOKEN", self.read_token)):
            if token is not None and (why := token_problem(token.get_secret_value())) is not None:
                raise ValueError(f"{name}: {why}")
        if self.reads_protected and self.api_token is None:
            # closed reads with open writes protect nothing: anyone could store, then delete, fits
            raise ValueError("ABCSCALE_READ_TOKEN or ABCSCALE_PROTECT_READS needs ABCSCALE_API_TOKEN too")
        if self.database_url is not None and not self.database_url.strip():
            raise ValueError("ABCSCALE_DATABASE_URL is set but empty")
        return self

    @field_validator("database_url")
    @classmethod
    def _postgres_driver(cls, value: str | None) -> str | None:
        # postgres://, as Heroku, Render and other platforms give it, is no SQLAlchemy dialect ("Can't load plugin:
        # sqlalchemy.dialects:postgres", a review), and postgresql:// means psycopg2, which the service does not
        # ship: both are psycopg 3's (the postgres extra's driver). A URL naming its driver is kept as it is.
        return None if value is None else _POSTGRES.sub("postgresql+psycopg://", value, count=1)

    @property
    def resolved_database_url(self) -> str:
        from sqlalchemy.engine import URL  # here: the CLI imports these settings without the database layer

        # built, not formatted: a '?' or '%41' in the folder's name was read as the URL's query or an escape
        return self.database_url or URL.create("sqlite", database=str(self.data_dir / "abcscale.db")).render_as_string()

    @property
    def reads_protected(self) -> bool:
        return self.protect_reads or self.read_token is not None

    @property
    def resolved_plot_dir(self) -> Path:
        return self.plot_dir or self.data_dir / "plots"

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


def token_problem(token: str) -> str | None:
    """Why ``token`` (stripped) cannot be a bearer token, never quoting it: a control character or non-ASCII inside,
    which no HTTP client can send in a header (each write would be a 403 for ever); None when it can."""
    bad = next((i for i, c in enumerate(token) if not " " <= c <= "~"), None)
    if bad is None:
        return None
    what = "a non-ASCII character" if ord(token[bad]) > 0x7F else "a control character"
    return (f"has {what} at position {bad + 1} of {len(token)} (the token is not shown); a token is printable "
            "ASCII (surrounding whitespace, a secret file's trailing newline, is stripped)")


class StartupRefused(RuntimeError):
    """A setting the service cannot start with; ``str()`` says why. ``setting`` names it (an ``ABCSCALE_*``
    variable), or is None for the database, which ``abcscale serve`` names as the user gave it (``--db``,
    ``ABCSCALE_DATABASE_URL`` or ``ABCSCALE_DATA_DIR``)."""

    def __init__(self, why: str, setting: str | None = None) -> None:
        super().__init__(why)
        self.setting = setting
