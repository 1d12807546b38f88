"""The app against its own OpenAPI schema with every schemathesis check (status codes, response schemas and
headers, negative data rejected, positive data accepted, auth enforced, Allow headers, stateful links):
all phases (examples, coverage, fuzzing, stateful), valid and schema-violating inputs, a fixed seed.

The operations on a stored fit are fuzzed on stored fits, not only on unknown ids: POST /v1/fits's OpenAPI
example is a table that fits (the examples phase sends it; the fuzzing phase then takes the ids it answered from
schemathesis's pool of response values), and its 201's links carry the id to every operation on the fit (the
stateful phase). Each run counts the answers that came from a stored fit and must have some.

``make test`` runs a bounded round (>= 2,000 requests: about 3,150 at 20 examples, 75 of them answered from a stored
fit, 27-31 s on 2 busy cores); ``make bench`` runs tests/benchmarks/bench_schemathesis.py, the same with >= 10,000
requests. Both must find 0 failures.
"""

from __future__ import annotations

import tempfile
import time
import warnings
from collections import Counter
from dataclasses import dataclass

import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import events, from_schema

from abcscale.service.app import create_app
from abcscale.service.config import Settings
from tests.service.conftest import SharedPlotWorkers

WRITE_TOKEN, READ_TOKEN = "fuzz-write-token", "fuzz-read-token"

# Deliberate narrowings, each where an answer depends on data that no JSON Schema states. POST /v1/fits takes any
# table the schema allows, but whether the bytes of an upload are a table at all (a 400) and whether a table can be
# fit (its columns exist, hold numbers, span enough widths and learning rates to bracket an optimum: a 422 naming
# the column or the problem) is about the data. The operations on a stored fit (reached since POST's example
# stores one) answer 422 for what that fit cannot give: a plot page past its own page count, a prediction at a
# width of 16.5, a covariate or group it lacks. Every other operation must accept every schema-valid request.
ACCEPTED = ["2xx", "400", "401", "403", "404", "409", "422"]
CONFIG = {
    "seed": 17,
    "headers": {"Authorization": f"Bearer {WRITE_TOKEN}"},
    "checks": {"enabled": True},
    "operations": [
        {"include-path": path, "include-method": method,
         "checks": {"positive_data_acceptance": {"expected-statuses": ACCEPTED}}}
        for method, path in (("POST", "/v1/fits"), ("GET", "/v1/fits/{fit_id}/plots/{name}.png"),
                             ("POST", "/v1/fits/{fit_id}/predict"))
    ],
}


#: schemathesis 4's negative-data generator for a multipart body with a binary part (POST /v1/fits' file) can raise
#: this inside hypothesis's filter, before it sends anything: an error of the tool's strategy, not an answer of the
#: app (the same scenario's other examples run). Which seed meets it depends on the whole schema. The same family
#: as schemathesis issue #4268 ("Unsupported type: 'bytes'" for a multipart format: binary field, stateful phase).
TOOL_BUG = "Unsupported type: 'Binary'"


@dataclass(frozen=True)
class FuzzReport:
    requests: int
    by_phase: dict[str, int]
    failures: dict[tuple[str, str, str], int]  # (operation, check, title) -> count
    examples: dict[tuple[str, str, str], str]  # one reproduction (curl) per failure
    errors: list[str]
    seconds: float
    tool_errors: list[str]  # the generator's own (TOOL_BUG), said but not counted against the app
    # phase -> 2xx answers of the operations on a fit's id (GET, DELETE, rows, plots, predict): the requests that
    # reached a stored fit. POST /v1/fits's OpenAPI example stores one (random tables never fit: without it every
    # such request was a 404, and a broken DELETE of a stored fit went unseen)
    on_stored_fit: dict[str, int]


def run_fuzz(max_examples: int, seed: int = 17, tokens: bool = True, coverage: bool = True,
             workers: SharedPlotWorkers | None = None) -> FuzzReport:
    """Every phase and check on a fresh app whose reads and writes both need a token (so that every guard is
    exercised; schemathesis holds the write token, which reads too), or (``tokens`` false) on the default open
    service, whose OpenAPI then asks for no token anywhere. ``coverage`` false leaves out the coverage phase
    (schemathesis's fixed set of boundary values per operation). ``workers``: the app draws its plots on the test
    process's shared plot workers (conftest), not on a pool of its own."""
    with warnings.catch_warnings(), tempfile.TemporaryDirectory(prefix="abcscale-schemathesis-") as data:
        warnings.simplefilter("ignore")
        auth = {"api_token": WRITE_TOKEN, "read_token": READ_TOKEN} if tokens else {}
        app = create_app(Settings(data_dir=data, **auth))
        if workers is not None:
            workers.attach(app)
        config = SchemathesisConfig.from_dict({**CONFIG, "seed": seed,
                                               **({} if coverage else {"phases": {"coverage": {"enabled": False}}})})
        schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
        schema.config.generation.update(max_examples=max_examples, modes=list(schemathesis.GenerationMode))
        start, requests, phases, on_stored_fit = time.perf_counter(), 0, Counter[str](), Counter[str]()
        failures, examples, errors, tool_errors = Counter[tuple[str, str, str]](), {}, [], []
        for event in from_schema(schema).execute():
            if isinstance(event, events.ScenarioFinished):
                requests += len(event.recorder.interactions)
                phases[str(event.phase)] += len(event.recorder.interactions)
                for case_id, interaction in event.recorder.interactions.items():
                    path = event.recorder.cases[case_id].value.operation.path
                    if "{fit_id}" in path and interaction.response and interaction.response.status_code < 300:
                        on_stored_fit[str(event.phase)] += 1
                for case_id, nodes in event.recorder.checks.items():
                    # the failing request's operation: a stateful scenario (a chain of calls) has no label of its own
                    label = event.recorder.cases[case_id].value.operation.label
                    for node in nodes:
                        if node.failure_info is not None:
                            key = (label, node.name, node.failure_info.failure.title)
                            failures[key] += 1
                            examples.setdefault(key, node.failure_info.code_sample)
            elif isinstance(event, events.NonFatalError | events.FatalError):
                text = str(getattr(event, "info", event))[:500]
                if isinstance(event, events.NonFatalError) and TOOL_BUG in text:
                    tool_errors.append(f"{event.label}: {text}")  # schemathesis's generator, before any request
                else:
                    errors.append(text)
        return FuzzReport(requests, dict(phases), dict(failures), examples, errors, time.perf_counter() - start,
                          tool_errors, dict(on_stored_fit))


def describe(report: FuzzReport) -> str:
    lines = [f"{report.requests} requests in {report.seconds:.1f} s {report.by_phase}; "
             f"{sum(report.failures.values())} failures, {len(report.errors)} errors; "
             f"{sum(report.on_stored_fit.values())} answers from a stored fit {report.on_stored_fit}"]
    for key, n in report.failures.items():  # a stateful chain's reproduction is its calls, the failing one last
        lines += [f"  {n} x {' / '.join(key)}", f"    {report.examples[key].strip().splitlines()[-1][:600]}"]
    return "\n".join(lines + [f"  error: {e}" for e in report.errors]
                     + [f"  generator error (schemathesis, not counted): {e}" for e in report.tool_errors])


def test_api_conforms_with_every_check(plot_workers):
    # The tool's generator bug (TOOL_BUG) can abort the whole stateful phase before it sends a request, and whether
    # it does varied from run to run with the same seed (a fresh clone's suite got 0 stateful requests, the same
    # test alone 500): then the next seed runs, so that every phase is exercised, each run's answers still judged
    for seed in (17, 18, 19):
        # 20 examples: about 3,150 requests at seed 17 (coverage 2,780, fuzzing 228, stateful 110-190), 75 answered
        # from a stored fit (fuzzing 55, stateful 11), 27-31 s; 50 gave 3,668 (fuzzing 561, stateful 324), 137 from
        # a stored fit, in 47 s. The coverage phase (most of the floor) does not depend on it. A stored fit costs
        # about 5 s: its fits, and the plot worker's start (2-3 s) and renders; before the example the round took
        # 20-22 s, none of it on a stored fit. The renders go to the test process's shared plot workers (conftest),
        # whose start is paid once per process, not once per round (2026-12-07, before and after that change alike:
        # 3,120-3,140 requests, 55-80 from a stored fit, of them 3 in the stateful phase; 24 s of CPU after it)
        report = run_fuzz(max_examples=20, seed=seed, workers=plot_workers)
        print(f"seed {seed}: {describe(report)}")
        assert not report.failures and not report.errors, describe(report)
        if report.by_phase.get("stateful") or not any("Stateful" in e for e in report.tool_errors):
            break
    assert report.requests >= 2000, describe(report)
    assert all(report.by_phase.get(p) for p in ("coverage", "fuzzing", "stateful")), report.by_phase
    # a break of an operation on a stored fit (a DELETE answering 500) is seen only where a request reaches one:
    # were POST's example no longer to fit, the fit operations would fall back to 404s, unnoticed
    assert report.on_stored_fit.get("fuzzing") and report.on_stored_fit.get("stateful"), describe(report)


def test_open_service_conforms_too(plot_workers):
    """The default service has no token: its OpenAPI must not claim one (schemathesis's auth checks would see
    the writes succeed without it), and a cross-origin write's 403 stays documented."""
    # Without the coverage phase: its 2,746 boundary values per run are the same validation paths the token round
    # above sends them through (a request carrying the token passes the guard to the same code), and were two
    # thirds of this test's time (18-19 s at 8 examples with it, 7 s without; session 71). The time goes to the
    # fuzzing and stateful phases instead: 12 examples, about 200 requests, 35 answered from a stored fit, 9-10 s
    report = run_fuzz(max_examples=12, seed=5, tokens=False, coverage=False, workers=plot_workers)
    print(describe(report))
    assert not report.failures and not report.errors, describe(report)
    assert report.requests >= 150, describe(report)
    assert report.by_phase.get("fuzzing") and report.by_phase.get("stateful"), report.by_phase
    assert sum(report.on_stored_fit.values()), describe(report)
