"""Session 79: the report page says the level of every interval it shows. The exponents' said theirs, but the
constant C's (a group's free fit and a joint law's) and the per-width LR* intervals were bare brackets at whatever
level the fit was asked for (90% here), beside the fixed 68% and 95% bands. And a parameter-count fit's plot captions
and per-size table said "width"."""

from __future__ import annotations

import html
import re

from tests.fitting.covariate_sweeps import covariate_sweep
from tests.service.conftest import N_BOOT


def test_the_constants_and_per_width_intervals_say_their_level(client, sweep_rows):
    r = client.post("/v1/fits", json={"rows": sweep_rows, "n_boot": N_BOOT, "confidence_level": 0.9,
                                      "target_width": 1024})
    assert r.status_code == 201, r.text
    group = r.json()["result"]["groups"][0]
    page = html.unescape(client.get(f"/fits/{r.json()['id']}").text)
    ci = group["constant_ci"]
    assert ci["confidence_level"] == 0.9
    said = re.search(r"<dt>C, LR\* at [^<]*\(free fit\)</dt><dd>[^<]*, 90% interval \[([^,\]]+), ([^\]]+)\]</dd>", page)
    assert said, page[:3000]
    assert [float(x) for x in said.groups()] == [float(f"{ci['low']:.3g}"), float(f"{ci['high']:.3g}")]
    assert '<th scope="col">90% interval</th>' in page
    assert any(w["ci"] for w in group["per_width"])


def test_a_joint_laws_constant_says_its_level_and_a_parameter_count_fit_no_width(client, tmp_path):
    path = tmp_path / "t.csv"
    covariate_sweep(seeds=1, size_unit=1e6).to_csv(path, index=False)
    r = client.post("/v1/fits", files={"file": ("t.csv", path.read_bytes(), "text/csv")},
                    data={"n_boot": str(N_BOOT), "size_col": "N", "size_kind": "params", "covariates": '["D"]',
                          "confidence_level": "0.8", "target_width": "1000000000"})
    assert r.status_code == 201, r.text
    (law,) = r.json()["result"]["joint"]
    assert law["constant_ci"]["confidence_level"] == 0.8
    page = html.unescape(client.get(f"/fits/{r.json()['id']}").text)
    assert re.search(r"<dt>C, LR\* at the bases</dt><dd>[^<]*, 80% interval \[", page), page[:3000]
    # its size is a parameter count: the captions and the per-size table's label say so, not "width"
    assert r.json()["result"]["mapping"]["size_kind"] != "width"
    alts = re.findall(r'<img class="plot"[^>]* alt="([^"]+)"', page)
    assert len(alts) == 3 and all("parameter count" in a and "width" not in a for a in alts), alts
    assert 'aria-label="optimal LR per parameter count, ' in page and "optimal LR per width" not in page
