"""The access model: open or token-protected reads, who may write and delete, CORS (off unless listed), the
cross-origin write check (a page of another origin cannot store a fit by a form post), and the start-up warning
for a service exposed without a token."""

from __future__ import annotations

import importlib
import warnings

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from abcscale.service.app import create_app, exposure_warning
from abcscale.service.config import Settings
from tests.service.conftest import N_BOOT, TOKEN, fit_count

READ = "read-only-token-for-tests"
ANALYTIC = {"parameterization": "mup", "optimizer": "adam", "width": 4096, "base": {"width": 256, "beta": 0.003}}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def closed(tmp_path):
    """Reads need the read token (or the write token); writes need the write token."""
    with TestClient(create_app(Settings(data_dir=tmp_path, api_token=TOKEN, read_token=READ))) as c:
        yield c


@pytest.fixture
def csv_upload(sweep) -> dict:
    return {"files": {"file": ("sweep.csv", sweep.to_csv(index=False).encode(), "text/csv")},
            "data": {"n_boot": str(N_BOOT)}}


def test_reads_are_open_by_default_even_with_a_write_token(locked):
    assert locked.get("/v1/fits").status_code == 200
    assert locked.post("/v1/recommend", json=ANALYTIC).status_code == 200


def test_a_read_token_closes_every_v1_route_and_never_writes(closed, sweep_rows):
    reads = [("GET", "/v1/fits", None), ("GET", f"/v1/fits/{'0' * 32}", None),
             ("GET", f"/v1/fits/{'0' * 32}/plots/loss_vs_lr.png", None), ("POST", "/v1/recommend", ANALYTIC),
             ("GET", "/v1/theory/exponents?parameterization=mup&optimizer=adam", None)]
    for method, url, body in reads:
        r = closed.request(method, url, json=body)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", url
        assert closed.request(method, url, json=body, headers=_bearer("wrong")).status_code == 403, url
        for token in (READ, TOKEN):  # the write token reads too
            assert closed.request(method, url, json=body, headers=_bearer(token)).status_code in (200, 404), url
    # health checks and the API description stay open
    assert closed.get("/healthz").status_code == 200 and closed.get("/openapi.json").status_code == 200
    # the read token is no write token: it neither stores nor deletes
    body = {"rows": sweep_rows, "n_boot": N_BOOT}
    assert closed.post("/v1/fits", json=body, headers=_bearer(READ)).status_code == 403
    stored = closed.post("/v1/fits", json=body, headers=_bearer(TOKEN))
    assert stored.status_code == 201, stored.text
    fit = f"/v1/fits/{stored.json()['id']}"
    assert closed.delete(fit, headers=_bearer(READ)).status_code == 403
    assert closed.get(fit, headers=_bearer(READ)).status_code == 200
    # deletion: any holder of the write token deletes any fit (there is one writer role, not per-fit owners)
    assert closed.delete(fit, headers=_bearer(TOKEN)).status_code == 204
    assert closed.get(fit, headers=_bearer(READ)).status_code == 404


def test_protect_reads_uses_the_write_token_for_everything(tmp_path):
    with TestClient(create_app(Settings(data_dir=tmp_path, api_token=TOKEN, protect_reads=True))) as c:
        assert c.get("/v1/fits").status_code == 401
        assert c.get("/v1/fits", headers=_bearer(READ)).status_code == 403
        assert c.get("/v1/fits", headers=_bearer(TOKEN)).status_code == 200


@pytest.mark.parametrize("env", [
    {"ABCSCALE_READ_TOKEN": "r"},  # closed reads with open writes protect nothing
    {"ABCSCALE_PROTECT_READS": "true"},  # no token to read with
    {"ABCSCALE_API_TOKEN": "w", "ABCSCALE_READ_TOKEN": " "},
    {"ABCSCALE_CORS_ORIGINS": "*"},  # would trust every page for writes too
    {"ABCSCALE_CORS_ORIGINS": "https://app.example/path"},
    {"ABCSCALE_CORS_ORIGINS": "app.example"},
])
def test_unsafe_access_settings_refuse_to_start(monkeypatch, env):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError):
        Settings()


def test_cors_origins_from_the_environment(monkeypatch):
    monkeypatch.setenv("ABCSCALE_CORS_ORIGINS", "https://a.example, http://localhost:3000/")
    assert Settings().cors_origins == ["https://a.example", "http://localhost:3000"]


def test_cors_is_off_by_default(client):
    r = client.get("/v1/fits", headers={"Origin": "https://app.example"})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    pre = client.options("/v1/fits", headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST",
                                               "Access-Control-Request-Headers": "content-type"})
    assert "access-control-allow-origin" not in pre.headers


def test_cors_allows_only_the_listed_origins(tmp_path):
    with TestClient(create_app(Settings(data_dir=tmp_path, cors_origins=["https://app.example"]))) as c:
        r = c.get("/v1/fits", headers={"Origin": "https://app.example"})
        assert r.headers["access-control-allow-origin"] == "https://app.example"
        pre = c.options("/v1/fits", headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST",
                                             "Access-Control-Request-Headers": "authorization, content-type"})
        assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == "https://app.example"
        assert "access-control-allow-credentials" not in pre.headers  # bearer tokens, never cookies
        other = c.get("/v1/fits", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


@pytest.mark.parametrize("headers", [
    {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},  # any current browser
    {"Sec-Fetch-Site": "same-site"},  # a sibling subdomain is another origin too
    {"Origin": "https://evil.example"},  # a browser without Fetch Metadata
    {"Origin": "null"},  # a sandboxed frame or a file:// page
])
def test_a_cross_origin_form_post_stores_nothing_without_a_token(client, csv_upload, headers):
    r = client.post("/v1/fits", headers=headers, **csv_upload)
    assert r.status_code == 403 and "cross-origin write refused" in r.json()["detail"], r.text
    # a text/plain form (the third enctype a form may use without a preflight) and a DELETE are refused alike
    assert client.post("/v1/fits", headers={**headers, "Content-Type": "text/plain"}, content=b"x").status_code == 403
    assert client.delete(f"/v1/fits/{'0' * 32}", headers=headers).status_code == 403
    assert fit_count(client) == 0


def test_same_origin_and_non_browser_posts_are_writes_as_before(client, csv_upload):
    for headers in ({"Sec-Fetch-Site": "same-origin", "Origin": "http://testserver"},
                    {"Origin": "http://testserver"}, {"Sec-Fetch-Site": "none"}, {}):
        assert client.post("/v1/fits", headers=headers, **csv_upload).status_code == 201, headers
    assert fit_count(client) == 4


def test_a_listed_origin_may_write(tmp_path, csv_upload):
    with TestClient(create_app(Settings(data_dir=tmp_path, cors_origins=["https://app.example"]))) as c:
        r = c.post("/v1/fits", headers={"Origin": "https://app.example", "Sec-Fetch-Site": "cross-site"}, **csv_upload)
        assert r.status_code == 201, r.text


@pytest.mark.parametrize(("host", "warns"), [("0.0.0.0", True), ("::", True), ("192.168.1.5", True),
                                             ("myhost.example", True), ("127.0.0.1", False), ("127.0.0.2", False),
                                             ("::1", False), ("[::1]", False), ("localhost", False)])
def test_exposure_warning_for_a_non_loopback_bind_without_a_token(tmp_path, host, warns):
    assert (exposure_warning(host, Settings(data_dir=tmp_path)) is not None) == warns
    assert exposure_warning(host, Settings(data_dir=tmp_path, api_token=TOKEN)) is None


def test_serve_warns_at_start_when_exposed_without_a_token(tmp_path, monkeypatch):
    from abcscale.cli import app as cli_app

    serve = importlib.import_module("abcscale.cli.serve")  # the module (the package exports its command function)
    started = []
    monkeypatch.setattr(serve, "run", lambda api, sock, *_, **__: (started.append(sock.getsockname()), sock.close()))
    monkeypatch.setenv("ABCSCALE_DATA_DIR", str(tmp_path))
    for key in ("ABCSCALE_API_TOKEN", "ABCSCALE_READ_TOKEN", "ABCSCALE_PROTECT_READS"):
        monkeypatch.delenv(key, raising=False)
    res = CliRunner().invoke(cli_app, ["serve", "--host", "0.0.0.0", "--port", "0"])
    assert res.exit_code == 0 and started, res.output
    assert "without ABCSCALE_API_TOKEN" in res.stderr and "read them all" in res.stderr
    monkeypatch.setenv("ABCSCALE_API_TOKEN", TOKEN)
    res = CliRunner().invoke(cli_app, ["serve", "--host", "0.0.0.0", "--port", "0"])
    assert res.exit_code == 0 and "warning" not in res.stderr


@pytest.mark.parametrize("path", ["/v1/recommend", "/v1/theory/from-mup", "/v1/fits/abc/predict"])
def test_a_refused_read_is_its_401_before_its_body_is_judged(closed, path):
    """FastAPI reads a body before the route's dependencies: a protected read sent malformed JSON, or JSON that fails
    its schema, answered a 422 describing the route's schema to a caller without a token (session 63's note); the
    token is judged first, as for a body that parses."""
    json_type = {"content-type": "application/json"}
    for body in (b"{not json", b'{"width": "x"}'):
        assert closed.post(path, content=body, headers=json_type).status_code == 401
        assert closed.post(path, content=body, headers={**json_type, **_bearer("wrong")}).status_code == 403
        r = closed.post(path, content=body, headers={**json_type, **_bearer(READ)})
        if "/fits/" in path and body.startswith(b"{\""):  # with it: no fit 'abc' is its 404, parsed
            assert r.status_code == 404, r.text
        else:  # else the body's 422
            assert r.status_code == 422 and r.json()["detail"][0]["loc"][0] == "body", r.text
    assert closed.get("/v1/theory/exponents?optimizer=nope").status_code == 401  # a query's too


def test_open_reads_still_say_a_bad_body_to_anyone(locked):
    r = locked.post("/v1/recommend", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "JSON decode error" in r.json()["detail"][0]["msg"], r.text
