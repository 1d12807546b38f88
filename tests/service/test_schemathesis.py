"""Property-based run of the app against its own OpenAPI schema: bounded examples, never a 5xx, and every
answer conforms to the documented response schema."""

from __future__ import annotations

import tempfile
import warnings

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance

from abcscale.service.app import create_app
from abcscale.service.config import Settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    _DATA = tempfile.TemporaryDirectory(prefix="abcscale-schemathesis-")
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(Settings(data_dir=_DATA.name)))
# Both valid and schema-violating inputs: the malformed ones are where a 500 would hide.
schema.config.generation.update(modes=list(GenerationMode))

CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_conforms(case):
    case.call_and_validate(checks=CHECKS)
