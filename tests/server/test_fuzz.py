"""Schemathesis fuzzes every documented operation: no input may cause a server error.

Path parameters point at a real model and a live session (except for DELETE), so bodies
reach the decoder and the binner instead of stopping at a 404.
"""

from __future__ import annotations

import collections

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode

from tests.server.conftest import COCHLEA

EXAMPLES = 15


def test_no_input_causes_a_server_error(live_url: str) -> None:
    schema = schemathesis.openapi.from_url(f"{live_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8
    session = httpx.post(f"{live_url}/v1/sessions", json={"model": COCHLEA}).json()
    failures: list[str] = []
    statuses: collections.Counter[int] = collections.Counter()
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck))
            def fuzz(case: schemathesis.Case) -> None:
                if "session_id" in (case.path_parameters or {}) and case.method != "DELETE":
                    case.path_parameters["session_id"] = session["id"]
                    case.headers = {**(case.headers or {}), "X-Session-Token": session["token"]}
                if "name" in (case.path_parameters or {}):
                    case.path_parameters["name"] = COCHLEA
                response = case.call(base_url=live_url, timeout=30)
                statuses[response.status_code] += 1
                if response.status_code >= 500 and "Retry-After" not in response.headers:
                    failures.append(f"{case.method} {case.formatted_path}: "
                                    f"{response.status_code} {response.text[:200]}")

            try:
                fuzz()
            except Unsatisfiable:  # nothing to make invalid (an operation without inputs)
                assert mode == GenerationMode.NEGATIVE
    assert not failures, "\n".join(failures[:10])
    assert sum(statuses.values()) > 100 and statuses[200] and statuses[422], statuses
