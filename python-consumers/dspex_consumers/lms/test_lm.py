"""`dspex/test`: a deterministic LM that writes well-formed adapter output for whatever signature it is asked.

Answers come from rules (first match wins; a rule matches when all its `when` texts occur in the last user
message and its `then` names at least one requested field), else from a hash of the prompt's inputs.
Fields a rule leaves out get hash-derived values of the right type, so the output always parses.

Modes:
- `lookup` (default): rules answer as written.
- `demo_gated`: a rule's answer is its *label*; the LM gives it only when a demo with the same label is
  in the prompt (for optimizer tests: good demos raise accuracy). Without one it follows a rule stated in
  the instructions ("When <input> is <value>, answer <text>."; the last such rule wins); else, at a
  temperature above 0, it guesses among the answers the rules know for that field (a hash of the
  temperature and the inputs picks); else it gives a deterministic wrong answer. The label task of
  tests/support/label-task.ts is exactly this mode with one rule per label.

In every mode, a reflection prompt (SIMBA's OfferFeedback: `module_names` and `program_inputs` in, a
`module_advice` asked for) that no rule answers gets a deterministic rule per module: "When <first
program input> is <its value>, answer <the better run's first output if it scored above 0, else the
first expected value>."

- `nearest_demo`: a Literal output takes the value the demo nearest the inputs has (the most words in
  common over all words, first of the best); without demos it is a hash-derived option. Demos then matter
  as they do for a small real model: which ones, and how many (the main job's quick run shows learning).

`format=chat` answers in `[[ ## field ## ]]` blocks even when the prompt asks for JSON, as a model that
ignores JSON instructions does: DSPy's JSONAdapter then fails to parse it (adapter selection tests).

`latency_ms` sleeps that long on every call (benchmarks). `unavailable=1` fails every call the way a
provider that is down does (LiteLLM's ServiceUnavailableError: a retryable `lm_error`), for fallback tests.
"""

import hashlib
import json
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import dspy
import litellm.exceptions as llm

from .prompt import PromptView, RequestedField, literal_options, read_prompt
from .response import chat_completion, render, rough_tokens

MODES = ("lookup", "demo_gated", "nearest_demo")


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
        unavailable: bool = False,
        answer_format: str = "asked",
    ):
        if mode not in MODES:
            raise ValueError(f"dspex/test mode must be one of {MODES}, not {mode!r}")
        super().__init__(model=model, model_type="chat", temperature=temperature, max_tokens=max_tokens, cache=False)
        self.rules = answers if isinstance(answers, list) and all(isinstance(r, Rule) for r in answers) else rules_of(answers)
        self.mode = mode
        self.latency_ms = latency_ms
        self.unavailable = unavailable
        self.answer_format = answer_format  # "asked": as the adapter asks; "chat": field blocks whatever is asked

    def forward(self, prompt: str | None = None, messages: list[dict[str, Any]] | None = None, **kwargs: Any):
        messages = messages or [{"role": "user", "content": prompt or ""}]
        if self.unavailable:
            raise llm.ServiceUnavailableError(
                message=f"{self.model} is unavailable (the test LM was asked to be)", llm_provider="dspex", model=self.model
            )
        if self.latency_ms > 0:
            time.sleep(self.latency_ms / 1000)
        view = read_prompt(messages)
        temperature = kwargs.get("temperature", self.kwargs.get("temperature", 0))
        values = self.answer(view, float(temperature or 0))
        asked_json = view.wants_json or "response_format" in kwargs
        text = render(values, as_json=asked_json and self.answer_format != "chat")
        return chat_completion(self.model, text, rough_tokens(messages), len(text) // 4 + 1)

    async def aforward(self, prompt: str | None = None, messages: list[dict[str, Any]] | None = None, **kwargs: Any):
        return self.forward(prompt=prompt, messages=messages, **kwargs)

    def answer(self, view: PromptView, temperature: float = 0.0) -> dict[str, Any]:
        seed = _seed(view)
        rule = next((rule for rule in self.rules if rule.matches(view)), None)
        values = {field.name: fake_value(field, seed) for field in view.requested}
        if self.mode == "nearest_demo":
            values.update(nearest_demo_values(view))
        if rule is None or "module_advice" not in rule.then:
            advice = reflection_advice(view)
            if advice is not None:
                values["module_advice"] = advice
        if rule is None:
            return values
        label = {name: value for name, value in rule.then.items() if name in values}
        if self.mode == "demo_gated" and not _demo_has_label(view, label):
            return {**values, **self._ungated(view, label, seed, temperature)}
        return {**values, **label}

    def _ungated(self, view: PromptView, label: Mapping[str, Any], seed: str, temperature: float) -> dict[str, Any]:
        """demo_gated without a demo of the label: a rule in the instructions, a guess when sampling, else wrong."""
        told = told_answer(view)
        if told is not None and label:
            return {next(iter(label)): told}
        if temperature > 0:
            return {name: self._guess(name, seed, temperature) for name in label}
        return {name: _wrong(value, seed) for name, value in label.items()}

    def _guess(self, name: str, seed: str, temperature: float) -> Any:
        options: list[Any] = []
        for rule in self.rules:
            if name in rule.then and rule.then[name] not in options:
                options.append(rule.then[name])
        return options[guess_index(seed, temperature, len(options))]


_WORD = re.compile(r"[a-z0-9']+")


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def nearest_demo_values(view: PromptView) -> dict[str, Any]:
    """The Literal outputs of the demo whose inputs share the most words with these (Jaccard; the first on ties)."""
    literal = [field.name for field in view.requested if literal_options(field.python_type)]
    if not literal or not view.demos:
        return {}
    query = _words(" ".join(view.inputs.values()))

    def closeness(demo: dict[str, str]) -> float:
        words = _words(" ".join(text for name, text in demo.items() if name in view.inputs))
        return len(query & words) / max(1, len(query | words))

    nearest = max(view.demos, key=closeness)
    return {name: nearest[name] for name in literal if name in nearest}


def _seed(view: PromptView) -> str:
    return hashlib.sha256(json.dumps(view.inputs, sort_keys=True).encode()).hexdigest()


_TOLD = re.compile(r"When (\w+) is (\S+?), answer (\S+?)\.")


def told_answer(view: PromptView) -> str | None:
    """The answer a rule in the instructions gives these inputs ("When label is amber, answer AM-132."); the last wins."""
    told = None
    for field, value, answer in _TOLD.findall(view.system):
        if view.inputs.get(field) == value:
            told = answer
    return told


def guess_index(seed: str, temperature: float, count: int) -> int:
    """Which of `count` answers a sampling run guesses: a hash of the temperature (in thousandths) and the inputs."""
    milli = math.floor(temperature * 1000 + 0.5)
    return int(hashlib.sha256(f"{milli}/{seed}".encode()).hexdigest()[:8], 16) % count


def reflection_advice(view: PromptView) -> dict[str, str] | None:
    """A deterministic reflection: for each module, the rule the better run (or the expected answer) shows."""
    if "module_names" not in view.inputs or "program_inputs" not in view.inputs:
        return None
    if not any(field.name == "module_advice" for field in view.requested):
        return None
    names = _json_or(view.inputs["module_names"], [])
    inputs = _json_or(view.inputs["program_inputs"], {})
    if not isinstance(names, list) or not isinstance(inputs, dict) or not inputs:
        return {}
    better = _json_or(view.inputs.get("better_program_outputs", ""), {})
    expected = _json_or(view.inputs.get("oracle_metadata", ""), {})
    reward = _float_or(view.inputs.get("better_reward_value"), 0.0)
    source = better if reward > 0 and isinstance(better, dict) and better and "N/A" not in better else expected
    if not isinstance(source, dict) or not source:
        return {}
    field, value = next(iter(inputs.items()))
    answer = next(iter(source.values()))
    return {str(name): f"When {field} is {_as_text(value)}, answer {_as_text(answer)}." for name in names}


def _json_or(text: str, fallback: Any) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return fallback


def _float_or(text: Any, fallback: float) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return fallback


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
        unavailable=options.get("unavailable") == "1",
        answer_format=options.get("format", "asked"),
        temperature=temperature,
        max_tokens=max_tokens,
    )
