"""The app as a whole: health, OpenAPI, settings, and the import boundary (no JAX, no runner, no CLI)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from abcscale.service.config import Settings


def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"


def test_openapi_lists_every_route(client):
    spec = client.get("/openapi.json").json()
    assert set(spec["paths"]) == {
        "/healthz", "/readyz", "/v1/recommend", "/v1/fits", "/v1/fits/{fit_id}", "/v1/fits/{fit_id}/plots/{name}.png",
        "/v1/fits/{fit_id}/rows.csv", "/v1/fits/{fit_id}/predict",
        "/v1/theory/exponents", "/v1/theory/convert", "/v1/theory/from-mup", "/v1/theory/to-mup",
    }
    create = spec["paths"]["/v1/fits"]["post"]
    assert set(create["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    assert "FitCreate" in spec["components"]["schemas"]
    schemas = spec["components"]["schemas"]
    assert all(schemas[m]["additionalProperties"] is False for m in ("AnalyticRecommend", "FitRecommend"))
    body = spec["paths"]["/v1/recommend"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert sorted(x["$ref"] for x in body["oneOf"]) == ["#/components/schemas/AnalyticRecommend",
                                                         "#/components/schemas/FitRecommend",
                                                         "#/components/schemas/TunedRecommend"]
    answer = spec["paths"]["/v1/recommend"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": "#/components/schemas/Recommendation"}


def test_healthz_reports_the_package_version(client):
    from abcscale.usecases import version

    assert client.get("/healthz").json()["version"] == version() == client.get("/openapi.json").json()["info"][
        "version"]


def test_service_does_not_import_jax_runner_or_cli():
    """Nor the table libraries: pandas and pyarrow load with the first table stored or read (0.2-0.3 s of a
    server's start, session 81)."""
    code = (
        "import sys; from abcscale.service.app import create_app; from abcscale.service.config import Settings; "
        "import tempfile; create_app(Settings(data_dir=tempfile.mkdtemp())); "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'jaxlib', 'optax', 'ray', 'pandas', "
        "'pyarrow') "
        "or m.startswith(('abcscale.runner', 'abcscale.cli'))); print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == ""


def test_settings_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ABCSCALE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ABCSCALE_API_TOKEN", "tok")
    monkeypatch.setenv("ABCSCALE_MAX_UPLOAD_MB", "3")
    s = Settings()
    assert s.resolved_database_url == f"sqlite:///{tmp_path / 'abcscale.db'}"
    assert s.api_token.get_secret_value() == "tok" and s.max_upload_bytes == 3 * 2**20
    monkeypatch.setenv("ABCSCALE_DATABASE_URL", "postgresql+psycopg://u@h/db")
    assert Settings().resolved_database_url == "postgresql+psycopg://u@h/db"


@pytest.mark.parametrize(("key", "value"), [("ABCSCALE_API_TOKEN", "  "), ("ABCSCALE_MAX_UPLOAD_MB", "0"),
                                            ("ABCSCALE_MAX_UPLOAD_MB", "nan")])
def test_unsafe_settings_refuse_to_start(monkeypatch, key, value):
    monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError):
        Settings()


def test_sqlite_database_is_in_wal_mode(client):
    with client.app.state.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


@pytest.mark.parametrize(
    ("args", "flag"),
    [(["--db", "nonsense://x"], "--db"), (["--db", "sqlite:////proc/abcscale-cannot-write/x.db"], "--db"),
     (["--log-level", "loud"], "--log-level"), (["--port", "70000"], "--port")],
)
def test_serve_with_bad_arguments_exits_2(args, flag):
    from abcscale.cli import app

    out = CliRunner().invoke(app, ["serve", "--port", "0", *args])  # 0: the port is taken first, any user may
    assert out.exit_code == 2
    assert flag in out.output
