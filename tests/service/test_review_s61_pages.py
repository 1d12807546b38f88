"""Session 61: what session 60's page review left. A report link naming a group or joint law the fit lacks
(`?group=7&width=4096` on a one-group fit), and a calculator link with `source=bogus`, drew the page with a 200 as if
nothing were wrong; a binary file uploaded as a table said "no rows"; the report's verdict rounded the exponent's
interval otherwise than the line above it ([-0.012, ...] under [-0.0123, ...])."""

from __future__ import annotations

import html
import io
import re

import pytest


@pytest.mark.parametrize("group", ["7", "1", "x", "-1"])
def test_a_report_link_with_a_group_the_fit_lacks_is_422_naming_it(reader, read_fit, group):
    r = reader.get(f"/fits/{read_fit['id']}", params={"group": group, "width": "4096"})
    assert r.status_code == 422, r.text
    alert = re.search(r'<div class="alert" role="alert" id="error-summary">(.*?)</div>', r.text, re.S)
    said = html.unescape(alert.group(1)) if alert else ""
    assert f"no group {group!r} in this fit: it has one group, number 0" in said, r.text
    ok = reader.get(f"/fits/{read_fit['id']}", params={"group": "0", "width": "4096"})
    assert ok.status_code == 200 and "error-summary" not in ok.text


def test_a_report_link_with_a_joint_law_the_fit_lacks_is_422(reader, read_fit):
    r = reader.get(f"/fits/{read_fit['id']}", params={"joint": "0", "size": "2048"})
    assert r.status_code == 422 and "no joint law &#39;0&#39; in this fit: it has no joint law" in r.text, r.text
    assert reader.get(f"/fits/{read_fit['id']}", params={"joint": ""}).status_code == 200


def test_a_calculator_link_with_an_unknown_source_is_422_at_the_source(client):
    r = client.get("/", params={"source": "bogus", "width": "4096", "base_width": "256", "base_lr": "0.003"})
    assert r.status_code == 422, r.text
    assert re.search(r'<a href="#f-source">Source</a>: theory or fit, got &#39;bogus&#39;', r.text), r.text
    assert 'id="f-source"' in r.text  # the summary's link has its target
    for source in ("theory", ""):
        ok = client.get("/", params={"source": source, "width": "4096", "base_width": "256", "base_lr": "0.003"})
        assert ok.status_code == 200, (source, ok.text)


def test_a_binary_upload_is_said_to_be_binary(client):
    data = b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4
    r = client.post("/fits", data={}, files={"file": ("runs.csv", io.BytesIO(data), "text/csv")})
    assert r.status_code == 422 and "is a binary file, not CSV text" in r.text, r.text


def test_the_fit_command_says_a_binary_table_is_binary(tmp_path):
    from typer.testing import CliRunner

    from abcscale.cli import app

    path = tmp_path / "runs.csv"
    path.write_bytes(b"width,lr,loss\n\x00\x00\x01\x02")
    res = CliRunner().invoke(app, ["fit", str(path)])
    assert res.exit_code == 2 and "is a binary file, not CSV text" in " ".join(res.output.split()), res.output


def test_the_verdict_rounds_the_interval_as_the_exponent_line_does(reader, read_fit):
    page = reader.get(f"/fits/{read_fit['id']}").text
    line = re.search(r"% interval \[([-+][0-9.]+), ([-+][0-9.]+)\]</dd>", page)
    verdict = re.search(r'<p class="verdict [a-z]+">[^<]*interval \[([-+][0-9.]+), ([-+][0-9.]+)\]', page)
    assert line and verdict, page
    assert verdict.groups() == line.groups()
    assert all(re.fullmatch(r"[-+]\d+\.\d{3}", x) for x in verdict.groups())
