"""Session 37: a multipart fit's extra file parts are named at their field."""

from __future__ import annotations

CSV = b"width,beta,seed,final_loss\n32,0.01,0,2.0\n"


def _loc(r) -> list:
    return [e["loc"] for e in r.json()["detail"]]


def test_two_tables_in_one_fit_are_refused_at_file(client):
    """Two `file` parts were a 400 "Too many files. Maximum number of files is 1." naming no field."""
    r = client.post("/v1/fits", files=[("file", ("a.csv", CSV, "text/csv")), ("file", ("b.csv", CSV, "text/csv"))])
    assert r.status_code == 422 and _loc(r) == [["body", "file"]]
    assert "given twice" in r.json()["detail"][0]["msg"]


def test_a_file_sent_in_a_text_field_is_named(client):
    r = client.post("/v1/fits", files=[("file", ("a.csv", CSV, "text/csv")),
                                       ("target_width", ("t.txt", b"1024", "text/plain"))])
    assert r.status_code == 422 and _loc(r) == [["body", "target_width"]]
    assert r.json()["detail"][0]["msg"] == "expected a form field, got a file"


def test_many_file_parts_are_still_refused_unread(client):
    parts = [(f"f{i}", (f"{i}.csv", CSV, "text/csv")) for i in range(6)]
    r = client.post("/v1/fits", files=[("file", ("a.csv", CSV, "text/csv")), *parts])
    assert r.status_code == 400 and "Too many files" in r.json()["detail"]


def test_the_openapi_gives_every_error_of_a_fit_its_json_body(client):
    """400/409/415 of POST /v1/fits and the plot's 202/503 were listed without a body; each is {"detail": ...}."""
    paths = client.get("/openapi.json").json()["paths"]
    create = paths["/v1/fits"]["post"]["responses"]
    plot = next(v for k, v in paths.items() if k.endswith("/plots/{name}.png"))["get"]["responses"]
    for code, answers in [*((c, create) for c in ("400", "409", "413", "415")), ("202", plot), ("503", plot)]:
        schema = answers[code]["content"]["application/json"]["schema"]
        assert "detail" in str(schema), (code, schema)
    assert "Retry-After" in plot["202"]["headers"]



def _stored(client, r) -> dict:
    return client.get("/v1/fits/" + r.headers["location"].rsplit("/", 1)[1]).json()["result"]


def test_the_upload_form_takes_the_theory_setup_seed_and_strict(client):
    """The page's form lacked the theory setup, alignment, bootstrap seed and strict, which POST /v1/fits takes: a
    table without parameterization/optimizer columns got no theory exponent from the page."""
    import io
    from html import unescape

    from abcscale.fitting.synthetic import synthetic_sweep
    from tests.service.conftest import N_BOOT

    def csv(df) -> dict:
        return {"file": ("s.csv", io.BytesIO(df.to_csv(index=False).encode()), "text/csv")}

    page = client.get("/fits").text
    for name in ("parameterization", "optimizer", "lr_mode", "alignment", "seed", "strict"):
        assert f'name="{name}"' in page, name
    assert "<details class=\"more\">" in page  # closed until one of its options is given
    bare = synthetic_sweep(widths=(64, 128, 256), exponent=0.0, seed=1)
    setup = {"parameterization": "mup", "optimizer": "adam", "lr_mode": "per_layer", "alignment": "full"}
    r = client.post("/fits", data={"n_boot": str(N_BOOT), "seed": "7", **setup}, files=csv(bare),
                    follow_redirects=False)
    assert r.status_code == 303, unescape(r.text)[:600]
    g = _stored(client, r)["groups"][0]
    assert g["theory_exponent"] == 0.0 and g["consistent"] is not None
    # strict: a prediction from two widths is unreliable, refused with the reason at the field, nothing stored
    before = client.get("/v1/fits").json()["count"]
    two = synthetic_sweep(widths=(64, 128), exponent=0.0, seed=2)
    r = client.post("/fits", data={"n_boot": str(N_BOOT), "target_width": "1024", "strict": "true", **setup},
                    files=csv(two))
    text = unescape(r.text)
    assert r.status_code == 422 and 'id="e-strict"' in r.text and "unreliable prediction" in text
    assert "<details class=\"more\" open>" in r.text  # the field in error is shown
    assert client.get("/v1/fits").json()["count"] == before
    bad = client.post("/fits", data={"n_boot": str(N_BOOT), "parameterization": "mupp"}, files=csv(bare))
    assert bad.status_code == 422 and 'id="e-parameterization"' in bad.text
