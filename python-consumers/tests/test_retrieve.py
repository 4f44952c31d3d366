"""Retrieve steps: embedding search with the deterministic test embedder, a registered corpus, clear errors
for bad settings, and the offline model's own embeddings (skipped when it is not installed)."""

import pytest
from conftest import qa_step

from dspex_consumers.executor import execute_step
from dspex_consumers.executor.retrieve import hashed_words, search
from dspex_consumers.executor.run import ExecutorSettings

PASSAGES = [
    "Reset your password from the login page.",
    "Parcels arrive within five working days.",
    "Refunds go back to the card you paid with.",
    "Change your email address in the account settings.",
]


def retrieve_step(**retrieve):
    return qa_step(
        module="Retrieve",
        signature={
            "instructions": "",
            "inputs": [{"name": "query", "type": "str", "optional": False}],
            "outputs": [{"name": "passages", "type": "list[str]", "optional": False}],
        },
        inputs={"query": "when does my parcel arrive"},
        retrieve={"embedder": "dspex/test", "k": 2, **retrieve},
    )


def test_the_hashed_wordsder_is_deterministic_and_words_in_common_point_the_same_way():
    first, again = hashed_words(["parcel arrive days"]), hashed_words(["parcel arrive days"])
    assert (first == again).all()
    assert search(PASSAGES, "when does my parcel arrive", "dspex/test", 1) == [PASSAGES[1]]
    assert search(PASSAGES, "forgot my password", "dspex/test", 1) == [PASSAGES[0]]


def test_a_retrieve_step_answers_the_k_nearest_passages_best_first_without_an_lm_call():
    outcome = execute_step(retrieve_step(passages=PASSAGES))
    assert outcome.ok, outcome.error
    assert outcome.outputs["passages"][0] == PASSAGES[1]
    assert len(outcome.outputs["passages"]) == 2
    assert outcome.usage["calls"] == 0
    assert outcome.lm_calls == []


def test_a_retrieve_step_searches_a_corpus_the_consumer_registered():
    settings = ExecutorSettings(corpora={"faq": PASSAGES})
    outcome = execute_step(retrieve_step(corpus="faq", k=1), settings)
    assert outcome.ok, outcome.error
    assert outcome.outputs == {"passages": [PASSAGES[1]]}


@pytest.mark.parametrize(
    ("retrieve", "message"),
    [
        ({"corpus": "nope"}, "unknown corpus 'nope' (this consumer has: none; start it with --corpus NAME=FILE)"),
        ({"passages": PASSAGES, "embedder": "dspex/nope"}, "unknown dspex embedder 'dspex/nope'"),
    ],
)
def test_bad_retrieve_settings_fail_the_step_as_a_bad_request_saying_why(retrieve, message):
    outcome = execute_step(retrieve_step(**retrieve))
    assert outcome.error is not None
    assert outcome.error.kind == "bad_request"
    assert message in outcome.error.message
    assert not outcome.error.retryable


def test_a_retrieve_step_without_its_settings_is_refused():
    step = retrieve_step(passages=PASSAGES)
    del step["retrieve"]
    outcome = execute_step(step)
    assert outcome.error is not None and outcome.error.kind == "bad_request"
    assert "needs its `retrieve` settings" in outcome.error.message


try:
    import llama_cpp  # noqa: F401

    from dspex_consumers.lms.offline import model_path

    model_path()
    MISSING = None
except Exception as error:
    MISSING = f"offline model not installed ({error}); run `bash infra/python/setup.sh --offline-model`"


@pytest.mark.offline
@pytest.mark.skipif(MISSING is not None, reason=MISSING or "")
def test_the_offline_model_embeds_paraphrases_nearest_each_other():
    corpus = [
        "I forgot my password and cannot log in",
        "Where is my parcel? The delivery is late",
        "I was billed two times for one order",
    ]
    queries = ["How do I reset my password?", "My package has not arrived yet", "The invoice charged me twice"]
    for query, expected in zip(queries, corpus, strict=True):
        assert search(corpus, query, "dspex/offline", 1) == [expected], query
