"""Service settings from the environment (``ABCSCALE_*``), checked once at startup."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """``ABCSCALE_DATABASE_URL``, ``ABCSCALE_DATA_DIR``, ``ABCSCALE_API_TOKEN``, ``ABCSCALE_MAX_UPLOAD_MB``,
    ``ABCSCALE_MAX_ROWS``, ``ABCSCALE_MAX_CELLS``, ``ABCSCALE_MAX_JSON_DEPTH``."""

    model_config = SettingsConfigDict(env_prefix="ABCSCALE_", extra="ignore")

    data_dir: Path = Field(Path("abcscale-data"), description="where the default SQLite file lives")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default sqlite:///<data_dir>/abcscale.db")
    api_token: SecretStr | None = Field(None, description="when set, writes need 'Authorization: Bearer <token>'")
    max_upload_mb: float = Field(50.0, gt=0, allow_inf_nan=False, description="request body cap, MiB")
    # The body cap does not bound memory: a 139 KB parquet can decode to 10 million rows. These do.
    max_rows: int = Field(1_000_000, gt=0, description="most rows a table to fit may hold once decoded")
    max_cells: int = Field(20_000_000, gt=0, description="most cells (rows x columns) of a decoded table")
    # json.loads recurses per level (a RecursionError near 1000); the bodies of this API need fewer than 5.
    max_json_depth: int = Field(64, ge=4, le=500, description="deepest nesting accepted in a JSON body")

    @model_validator(mode="after")
    def _check(self) -> Settings:
        # An empty token would make every write look authorised to a careless comparison: refuse to start.
        if self.api_token is not None and not self.api_token.get_secret_value().strip():
            raise ValueError("ABCSCALE_API_TOKEN is set but empty; unset it or give a real token")
        if self.database_url is not None and not self.database_url.strip():
            raise ValueError("ABCSCALE_DATABASE_URL is set but empty")
        return self

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'abcscale.db'}"

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)
