"""The long schemathesis run: the same app, phases and checks as tests/service/test_schemathesis.py, with
>= 10,000 requests (13,264 at seed 10000, 1,772 of them answered from a stored fit: 410 s on 2 busy cores, where
the same run without a stored fit took 352 s). Prints the counts; any failure of any check fails it.

Run: ``make bench`` or ``pytest tests/benchmarks/bench_schemathesis.py -s``.
"""

from __future__ import annotations

from tests.service.test_schemathesis import describe, run_fuzz

MAX_EXAMPLES = 600
MIN_REQUESTS = 10_000


def test_schemathesis_long_run_every_check():
    report = run_fuzz(max_examples=MAX_EXAMPLES, seed=10_000)
    print("\nschemathesis, every check:", describe(report))
    assert not report.failures and not report.errors, describe(report)
    assert report.requests >= MIN_REQUESTS, describe(report)
