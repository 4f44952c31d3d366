"""Smoke test of the real offline model (Gemma 3 270M via llama-cpp-python): it answers, and it parses."""

import statistics
import time

import pytest
from conftest import qa_step

from dspex_consumers.executor import execute_step

try:
    from dspex_consumers.lms.offline import model_path

    import llama_cpp  # noqa: F401

    MODEL = str(model_path())
    MISSING = None
except Exception as error:  # noqa: BLE001
    MISSING = f"offline model not installed ({error}); run `bash infra/python/setup.sh --offline-model`"

pytestmark = pytest.mark.offline


@pytest.mark.skipif(MISSING is not None, reason=MISSING or "")
def test_the_offline_model_answers_a_simple_signature(capsys):
    signature = {
        "instructions": "Answer the question.",
        "inputs": [{"name": "question", "type": "str"}],
        "outputs": [{"name": "answer", "type": "str"}, {"name": "sure", "type": "bool"}],
    }
    step = qa_step(signature=signature, demos=[], lm={"model": "dspex/offline", "temperature": 0, "maxTokens": 48},
                   inputs={"question": "What is the capital of France?"}, timeoutMs=120_000)
    first = execute_step(step)
    assert first.ok, first.error
    assert isinstance(first.outputs["answer"], str) and first.outputs["answer"].strip()
    assert isinstance(first.outputs["sure"], bool)
    seconds = []
    for _ in range(3):
        started = time.perf_counter()
        assert execute_step(step).ok
        seconds.append(time.perf_counter() - started)
    with capsys.disabled():
        print(f"\noffline model: first call {first.latency_ms / 1000:.2f} s (loads the model), "
              f"then {statistics.median(seconds):.2f} s per call (median of 3), answer={first.outputs}")
