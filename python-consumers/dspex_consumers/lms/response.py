"""An OpenAI-chat-completion-shaped response, the form dspy.BaseLM.forward must return, and its text."""

import json
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any


def chat_completion(model: str, text: str, prompt_tokens: int, completion_tokens: int) -> SimpleNamespace:
    """`_hidden_params.response_cost` as LiteLLM sets it (DSPy records it): a local model costs nothing."""
    return SimpleNamespace(
        model=model,
        _hidden_params={"response_cost": 0.0},
        choices=[SimpleNamespace(index=0, finish_reason="stop", message=SimpleNamespace(role="assistant", content=text))],
        usage={
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    )


def rough_tokens(messages: list[dict[str, Any]]) -> int:
    """About four characters a token: the test LM's deterministic stand-in for a tokenizer."""
    return sum(len(str(message.get("content", ""))) for message in messages) // 4 + 1


def render(values: Mapping[str, Any], as_json: bool) -> str:
    """Output fields as the adapter parses them: a JSON object (JSONAdapter) or `[[ ## field ## ]]` blocks."""
    if as_json:
        return json.dumps(dict(values), ensure_ascii=False)
    blocks = [f"[[ ## {name} ## ]]\n{as_text(value)}" for name, value in values.items()]
    return "\n\n".join([*blocks, "[[ ## completed ## ]]"])


def as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
