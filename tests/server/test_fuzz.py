"""Schemathesis fuzzes every documented operation: no input may cause a server error.

Path parameters point at a real model and a live session (except for DELETE), so bodies
reach the decoder and the binner instead of stopping at a 404.
"""

from __future__ import annotations

import collections
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode

from tests.server.conftest import COCHLEA

EXAMPLES = 15


def binary_media_types(openapi: dict[str, Any]) -> set[str]:
    """Request media types documented as raw bytes (events, snapshots, ...)."""
    found = set()
    for path in openapi["paths"].values():
        for operation in path.values():
            content = operation.get("requestBody", {}).get("content", {})
            found |= {kind for kind, doc in content.items()
                      if doc.get("schema", {}).get("format") == "binary"}
    return found - {"application/octet-stream"}


def test_no_input_causes_a_server_error(live_url: str) -> None:
    openapi = httpx.get(f"{live_url}/openapi.json").json()
    for kind in binary_media_types(openapi):  # schemathesis sends them as plain bytes
        schemathesis.serializer.alias(kind, "application/octet-stream")
    schema = schemathesis.openapi.from_dict(openapi)
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
