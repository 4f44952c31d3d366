"""`dspex/test`: a deterministic LM that writes well-formed adapter output for whatever signature it is asked.

Answers come from rules (first match wins; a rule matches when all its `when` texts occur in the last user
message and its `then` names at least one requested field), else from a hash of the prompt's inputs.
Fields a rule leaves out get hash-derived values of the right type, so the output always parses.

Modes:
- `lookup` (default): rules answer as written.
- `demo_gated`: a rule's answer is its *label*; the LM gives it only when a demo with the same label is
  in the prompt, otherwise a deterministic wrong answer (for optimizer tests: good demos raise accuracy).

`latency_ms` sleeps that long on every call (benchmarks).
"""

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import dspy

from .prompt import PromptView, RequestedField, literal_options, read_prompt
from .response import chat_completion, rough_tokens

MODES = ("lookup", "demo_gated")


@dataclass(frozen=True)
class Rule:
    when: tuple[str, ...]
    then: Mapping[str, Any]

    def matches(self, view: PromptView) -> bool:
        asked = {field.name for field in view.requested}
        return all(text in view.last_user for text in self.when) and bool(asked & set(self.then))


def rules_of(answers: Any) -> list[Rule]:
    """Rules from `[{"when": "..."|[...], "then": {...}}, ...]` or the shorthand `{"when text": {...}}`."""
    if answers is None:
        return []
    if isinstance(answers, Mapping):
        return [Rule((key,), value) for key, value in answers.items()]
    rules = []
    for entry in answers:
        when = entry["when"]
        rules.append(Rule(tuple([when] if isinstance(when, str) else when), entry["then"]))
    return rules


def load_answers(path: str | Path) -> list[Rule]:
    return rules_of(json.loads(Path(path).read_text()))


class TestLM(dspy.BaseLM):
    __test__ = False  # not a pytest class

    def __init__(
        self,
        answers: Any = None,
        mode: str = "lookup",
        latency_ms: float = 0,
        model: str = "dspex/test",
        temperature: float = 0.0,
        max_tokens: int = 512,
    ):
        if mode not in MODES:
            raise ValueError(f"dspex/test mode must be one of {MODES}, not {mode!r}")
        super().__init__(model=model, model_type="chat", temperature=temperature, max_tokens=max_tokens, cache=False)
        self.rules = answers if isinstance(answers, list) and all(isinstance(r, Rule) for r in answers) else rules_of(answers)
        self.mode = mode
        self.latency_ms = latency_ms

    def forward(self, prompt: str | None = None, messages: list[dict[str, Any]] | None = None, **kwargs: Any):
        messages = messages or [{"role": "user", "content": prompt or ""}]
        if self.latency_ms > 0:
            time.sleep(self.latency_ms / 1000)
        view = read_prompt(messages)
        values = self.answer(view)
        text = render(values, as_json=view.wants_json or "response_format" in kwargs)
        return chat_completion(self.model, text, rough_tokens(messages), len(text) // 4 + 1)

    async def aforward(self, prompt: str | None = None, messages: list[dict[str, Any]] | None = None, **kwargs: Any):
        return self.forward(prompt=prompt, messages=messages, **kwargs)

    def answer(self, view: PromptView) -> dict[str, Any]:
        seed = _seed(view)
        rule = next((rule for rule in self.rules if rule.matches(view)), None)
        values = {field.name: fake_value(field, seed) for field in view.requested}
        if rule is None:
            return values
        label = {name: value for name, value in rule.then.items() if name in values}
        if self.mode == "demo_gated" and not _demo_has_label(view, label):
            return {**values, **{name: _wrong(value, seed) for name, value in label.items()}}
        return {**values, **label}


def _seed(view: PromptView) -> str:
    return hashlib.sha256(json.dumps(view.inputs, sort_keys=True).encode()).hexdigest()


def _demo_has_label(view: PromptView, label: Mapping[str, Any]) -> bool:
    wanted = {name: _as_text(value) for name, value in label.items()}
    return any(all(demo.get(name) == value for name, value in wanted.items()) for demo in view.demo_outputs)


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _wrong(value: Any, seed: str) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    return f"not {value} ({seed[:4]})"


def fake_value(field: RequestedField, seed: str) -> Any:
    """A deterministic value of the field's type, derived from the prompt's inputs."""
    number = int(hashlib.sha256(f"{seed}/{field.name}".encode()).hexdigest()[:8], 16)
    kind = field.python_type.replace(" ", "")
    options = literal_options(field.python_type)
    if options:
        return "finish" if field.name == "next_tool_name" and "finish" in options else options[number % len(options)]
    if field.name == "next_tool_args" or kind.startswith(("dict", "Dict")):
        return {}
    if kind == "int":
        return number % 100
    if kind == "float":
        return round((number % 1000) / 1000, 3)
    if kind == "bool":
        return number % 2 == 0
    if kind.startswith(("list[int]", "list[float]")):
        return [number % 10]
    if kind.startswith(("list", "List")):
        return [f"{field.name}-{number % 1000}"]
    return f"{field.name} {number % 100000:05d}"


def render(values: Mapping[str, Any], as_json: bool) -> str:
    if as_json:
        return json.dumps(dict(values), ensure_ascii=False)
    blocks = [f"[[ ## {name} ## ]]\n{_as_text(value)}" for name, value in values.items()]
    return "\n\n".join([*blocks, "[[ ## completed ## ]]"])


def from_model_string(model: str, answers: Sequence[Rule] | None, temperature: float, max_tokens: int) -> TestLM:
    """`dspex/test?mode=demo_gated&latency_ms=200&answers=/path/rules.json` → a TestLM."""
    _, _, query = model.partition("?")
    options = {key: values[-1] for key, values in parse_qs(query).items()}
    rules = load_answers(options["answers"]) if "answers" in options else list(answers or [])
    return TestLM(
        answers=rules,
        mode=options.get("mode", "lookup"),
        latency_ms=float(options.get("latency_ms", 0)),
        model=model,
        temperature=temperature,
        max_tokens=max_tokens,
    )
