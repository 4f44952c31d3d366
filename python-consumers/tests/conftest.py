import json
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
VECTORS = REPO / "tests" / "vectors"


def load_json(path: Path) -> Any:
    return json.loads(path.read_text())


def qa_step(**overrides: Any) -> dict[str, Any]:
    """The StepDispatched data of the shared vector, with overrides."""
    data = load_json(VECTORS / "events" / "StepDispatched.v1.json")["data"]
    return {**data, **overrides}


@pytest.fixture
def dispatched() -> dict[str, Any]:
    return load_json(VECTORS / "events" / "StepDispatched.v1.json")
