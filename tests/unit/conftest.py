"""The unit layer: pure functions and small objects, no generated base, no training, no
servers, no Spark; the whole layer runs in seconds. The shared fixtures that build data or
models are refused here, so a test that needs them is moved to its layer, not left to slow
this one down."""

import pytest

_ELSEWHERE = "needs {what}: it belongs in tests/{layer} (docs/testing.md), the unit layer builds nothing"


@pytest.fixture(scope="session")
def generated():
    pytest.fail(_ELSEWHERE.format(what="the generated base", layer="data or tests/model"))


@pytest.fixture(scope="session")
def trained():
    pytest.fail(_ELSEWHERE.format(what="the trained models", layer="model or tests/system"))
