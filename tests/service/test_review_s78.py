"""Session 78's review of the web pages in a real browser: the report showed a fit's predictions with their 68% and
95% bands alone, where the fit (and the calculator on the same fit) gave its own level's, 90% here."""

from __future__ import annotations

import re

from tests.service.conftest import N_BOOT


def test_the_report_shows_the_band_at_the_fits_own_level(client, sweep_rows):
    r = client.post("/v1/fits", json={"rows": sweep_rows, "n_boot": N_BOOT, "confidence_level": 0.9,
                                      "target_width": 1024})
    assert r.status_code == 201, r.text
    fit = client.get(f"/v1/fits/{r.json()['id']}").json()
    stored = fit["result"]["groups"][0]["prediction"]["ci"]
    assert stored["confidence_level"] == 0.9
    for params in ({}, {"group": "0", "width": "4096"}):  # the upload's prediction, and the predict box's
        page = client.get(f"/fits/{r.json()['id']}", params=params)
        assert page.status_code == 200
        bands = re.findall(r'<dt>90% band \(the fit\'s level\)</dt><dd data-field="ci" data-low="([^"]+)" '
                           r'data-high="([^"]+)" data-level="0.9">', page.text)
        assert bands, page.text[:2000]
        if not params:
            assert [float(x) for x in bands[0]] == [stored["low"], stored["high"]]
    # at 95%, the two fixed bands alone, as before
    plain = client.post("/v1/fits", json={"rows": sweep_rows, "n_boot": N_BOOT, "target_width": 1024})
    assert "band (the fit's level)" not in client.get(f"/fits/{plain.json()['id']}").text
