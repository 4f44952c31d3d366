"""Which LM a step's `lm.model` means: `dspex/test`, `dspex/offline`, or any LiteLLM model id."""

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dspy

from .test_lm import Rule


class UnknownModel(ValueError):
    pass


@dataclass(frozen=True)
class LmChoice:
    lm: dspy.BaseLM
    adapter: dspy.Adapter | None  # None: DSPy's default (ChatAdapter, falling back to JSON)


def lm_for(config: dict[str, Any], test_answers: Sequence[Rule] = (), timeout_s: float | None = None) -> LmChoice:
    """The step's LM, with the adapter its config names (`chat`, `json`) instead of the model's default."""
    choice = _model_of(config, test_answers, timeout_s)
    match config.get("adapter"):
        case "chat":
            return LmChoice(choice.lm, dspy.ChatAdapter(use_json_adapter_fallback=False))
        case "json":
            return LmChoice(choice.lm, dspy.JSONAdapter())
    return choice


def _model_of(config: dict[str, Any], test_answers: Sequence[Rule], timeout_s: float | None) -> LmChoice:
    model = config["model"]
    temperature = float(config.get("temperature", 0))
    max_tokens = int(config.get("maxTokens", 512))
    if model == "dspex/test" or model.startswith("dspex/test?"):
        from .test_lm import from_model_string

        return LmChoice(from_model_string(model, test_answers, temperature, max_tokens), None)
    if model == "dspex/offline":
        from .offline import OfflineLM

        return LmChoice(OfflineLM(model, temperature, max_tokens), dspy.JSONAdapter())
    if model.startswith("dspex/"):
        raise UnknownModel(f"unknown dspex model {model!r} (known: dspex/test, dspex/offline)")
    # Provider keys come from this process's environment (read by LiteLLM), never from the step.
    return LmChoice(
        dspy.LM(
            model,
            temperature=temperature,
            max_tokens=max_tokens,
            cache=os.environ.get("DSPEX_LM_CACHE") == "1",
            num_retries=int(os.environ.get("DSPEX_LM_RETRIES", "0")),
            timeout=timeout_s,
        ),
        None,
    )
