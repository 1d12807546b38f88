"""Every page of a fit's plots is served: a fit of more groups than one PNG page holds (fitting.plots.PAGE)
lists each page's URL, answers each page from its own cached file, refuses a page it does not have (4xx naming
``page``) and shows every page on its web page."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from abcscale.fitting.plots import PAGE
from abcscale.fitting.synthetic import synthetic_sweep
from abcscale.service import plots
from abcscale.service.app import create_app
from abcscale.service.config import Settings
from abcscale.service.plots import PLOT_NAMES
from tests.service.conftest import TestClient

PNG = b"\x89PNG\r\n\x1a\n"
N_GROUPS = PAGE + 1  # one group more than a page: two pages of each plot


@pytest.fixture(scope="module")
def served(tmp_path_factory, plot_workers):
    """A client of a real app and a stored fit of N_GROUPS groups (column ``arm``), posted as JSON rows."""
    parts = [synthetic_sweep(widths=(64, 128, 256), seeds=1, step=0.5, half_range=1.5, group={"arm": f"a{i:02d}"},
                             seed=i) for i in range(N_GROUPS)]
    rows = pd.concat(parts, ignore_index=True).to_dict(orient="records")
    settings = Settings(data_dir=tmp_path_factory.mktemp("data"), database_url=None, api_token=None, plot_wait_s=120)
    with TestClient(create_app(settings)) as c:
        plot_workers.attach(c.app)
        r = c.post("/v1/fits", json={"rows": rows, "group_cols": ["arm"], "n_boot": 20, "name": "many groups"})
        assert r.status_code == 201, r.text
        assert len(r.json()["result"]["groups"]) == N_GROUPS
        yield c, r.json(), settings


def test_the_service_pages_as_the_plot_writer_does():
    assert plots.PAGE == PAGE and plots.plot_pages(PAGE) == 1 and plots.plot_pages(PAGE + 1) == 2
    assert plots.plot_pages(0) == 1  # an empty fit still draws one (empty) page


def test_the_fit_lists_every_page_of_every_plot(served):
    _, fit, _ = served
    base = f"/v1/fits/{fit['id']}/plots"
    assert fit["plots"] == {**{n: f"{base}/{n}.png" for n in PLOT_NAMES},
                            **{f"{n}_2": f"{base}/{n}.png?page=2" for n in PLOT_NAMES}}


@pytest.mark.parametrize("name", PLOT_NAMES)
def test_each_page_is_its_own_png_cached_in_its_own_file(served, name):
    c, fit, settings = served
    first = c.get(f"/v1/fits/{fit['id']}/plots/{name}.png")
    second = c.get(f"/v1/fits/{fit['id']}/plots/{name}.png", params={"page": 2})
    assert first.status_code == 200 and second.status_code == 200, second.text
    assert first.content.startswith(PNG) and second.content.startswith(PNG)
    assert first.content != second.content  # page 2 holds the last group, not page 1 again
    folder = settings.resolved_plot_dir / fit["id"]
    assert (folder / f"{name}.png").read_bytes() == first.content
    assert (folder / f"{name}_2.png").read_bytes() == second.content
    assert c.get(f"/v1/fits/{fit['id']}/plots/{name}.png", params={"page": 1}).content == first.content


@pytest.mark.parametrize("page", ["3", "0", "-1", "two", str(2**40)])
def test_a_page_the_fit_does_not_have_is_a_422_naming_page(served, page):
    c, fit, _ = served
    r = c.get(f"/v1/fits/{fit['id']}/plots/lr_vs_width.png", params={"page": page})
    assert r.status_code == 422, r.text
    assert [e["loc"] for e in r.json()["detail"]] == [["query", "page"]]


def test_a_one_page_fit_refuses_page_2(client, stored_fit):
    r = client.get(f"/v1/fits/{stored_fit['id']}/plots/loss_vs_lr.png", params={"page": 2})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "page"], r.text
    assert "1 page" in r.json()["detail"][0]["msg"]
    assert set(stored_fit["plots"]) == set(PLOT_NAMES)  # one page: no page keys


def test_the_report_shows_and_links_every_page(served):
    c, fit, _ = served
    page = c.get(f"/fits/{fit['id']}")
    assert page.status_code == 200
    for name in PLOT_NAMES:
        for url in (f"/v1/fits/{fit['id']}/plots/{name}.png", f"/v1/fits/{fit['id']}/plots/{name}.png?page=2"):
            assert re.search(rf'data-src="{re.escape(url)}" alt="[^"]+"', page.text), url
            assert f'<a href="{url}">' in page.text, url
        assert f"page 2 of 2: groups {PAGE + 1}-{N_GROUPS}" in page.text
