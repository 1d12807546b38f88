"""Session 57: a CI engineer's review of the gates with a service. An empty --service (an unset variable) made
`check` pass against theory alone (exit 0); a URL no request can use was exit 3, which a retry loop retries; the
JSON `fit --service --json` writes was refused by `check --fit`; a value exactly at the tolerance edge failed by a
rounding of its ratio; a 429 or 408, which a retry may pass, was exit 2."""

from __future__ import annotations

import http.server
import json
import threading

import pytest
import yaml
from typer.testing import CliRunner

from abcscale.cli import app
from abcscale.fitting import fit_table
from abcscale.fitting.synthetic import synthetic_sweep
from abcscale.usecases.fits import load_fit

runner = CliRunner()
CONFIG = "examples/check-config.yaml"


def _err(res) -> str:
    return " ".join(res.output.split())


@pytest.mark.parametrize(("args", "said"), [
    (["check", CONFIG, "--service", "", "--fit-id", ""], "error: --service: empty (an unset variable?)"),
    (["check", CONFIG, "--service", "http://127.0.0.1:9", "--fit-id", ""], "error: --fit-id: empty"),
    (["check", CONFIG, "--service", "localhost:8000", "--fit-id", "x"],
     "error: --service: expected an http:// or https:// URL with a host"),
    (["check", CONFIG, "--service", "http://127.0.0.1:9/?x=1"], "error: --service: the service's base URL takes no"),
    (["fit", "examples/tour-sweep.parquet", "--service", ""], "error: --service: empty (an unset variable?)"),
    (["fit", "examples/tour-sweep.parquet", "--service", "ftp://h"], "error: --service: expected an http:// or"),
])
def test_a_service_url_no_request_can_use_is_bad_input(args, said):
    res = runner.invoke(app, args)
    assert res.exit_code == 2 and said in _err(res), res.output


def test_a_stored_fits_json_reads_as_its_result(tmp_path):
    fit = fit_table(synthetic_sweep((64, 128, 256), seeds=1), n_boot=20)
    stored = tmp_path / "stored.json"
    stored.write_text(json.dumps({"id": "abc", "name": None, "result": fit.model_dump(mode="json")}))
    assert load_fit(stored) == fit
    with pytest.raises(ValueError, match="is not a FitResult"):  # anything else stays refused
        (tmp_path / "other.json").write_text(json.dumps({"id": "abc", "result": {"x": 1}}))
        load_fit(tmp_path / "other.json")


@pytest.mark.parametrize("width", [640, 768, 12288])
def test_a_value_exactly_at_the_tolerance_edge_passes(tmp_path, width):
    from abcscale import theory
    from abcscale.schemas.theory import BaseConfig

    rec = theory.transfer("mup", "adam", BaseConfig(width=256, beta=3e-3), width)
    cfg = {"parameterization": "mup", "optimizer": "adam", "width": width, "base_width": 256, "beta": 3e-3,
           "lr": {s.layer.value: 2 * s.lr for s in rec.layers}}
    path = tmp_path / "edge.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = runner.invoke(app, ["check", str(path), "--json"])
    assert res.exit_code == 0, res.output
    assert all(c["ok"] for c in json.loads(res.stdout)["checks"] if c["setting"] == "lr")
    cfg["lr"] = {k: v * 1.001 for k, v in cfg["lr"].items()}  # past the edge fails, as before
    path.write_text(yaml.safe_dump(cfg))
    assert runner.invoke(app, ["check", str(path)]).exit_code == 1


@pytest.mark.parametrize("status", [429, 408])
def test_a_rate_limit_or_a_request_timeout_is_retryable(status):
    class Busy(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"detail": "slow down"}')

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Busy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        res = runner.invoke(app, ["check", CONFIG, "--service", url, "--fit-id", "x"])
        assert res.exit_code == 3 and f"answered {status}" in _err(res), res.output
    finally:
        server.shutdown()
