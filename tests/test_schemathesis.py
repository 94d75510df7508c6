"""Property-based API test: schemathesis generates valid and invalid requests for every operation in
the live server's /openapi.json, and no response may be a 5xx.

Uses schemathesis's Hypothesis strategies directly: its `pytest.from_fixture` loader fails under
pytest 9 (it reads the removed `Function._nodeid`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from http_helpers import running_server
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from api.app import create_app
from rag.assistant import Assistant
from rag.config import Settings

MAX_EXAMPLES = 20  # per operation and mode: 2 modes x 9 operations x 20 stays well under a minute


@pytest.fixture(scope="module")
def api_schema(seed_assistant: Assistant, settings: Settings) -> Iterator[schemathesis.BaseSchema]:
    with running_server(create_app(seed_assistant, settings)) as url:
        yield schemathesis.openapi.from_url(f"{url}/openapi.json")  # requests go to the same server


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_no_server_errors(api_schema: schemathesis.BaseSchema, mode: GenerationMode) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 8
    failures: dict[str, str] = {}
    calls: dict[str, int] = {}
    for operation in operations:
        calls[operation.label] = 0

        @given(case=operation.as_strategy(generation_mode=mode))
        @hypothesis_settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                             suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            calls[case.operation.label] += 1
            case.call_and_validate(checks=[not_a_server_error])

        try:
            check()
        except Unsatisfiable:  # nothing to break: no parameters, or none with constraints
            assert mode is GenerationMode.NEGATIVE, operation.label
            del calls[operation.label]
        except Exception as exc:  # every operation runs; all failures are reported together
            failures[operation.label] = f"{type(exc).__name__}: {exc}"[:2000]
    assert not failures, "\n\n".join(f"{label}: {msg}" for label, msg in failures.items())
    assert "POST /ask" in calls and "POST /v1/chat/completions" in calls
    assert all(n > 0 for n in calls.values()), calls
