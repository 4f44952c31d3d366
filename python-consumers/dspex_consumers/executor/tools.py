"""The registry of tools a ReAct step may name: real functions, never code from the step.

Built in: `calculator` and `search[:<corpus>]`. Yours: a Python module named in the config
(`python.tools`, passed to the workers as DSPEX_TOOL_MODULES or `--tools`) whose `TOOLS` maps tool names to
plain functions (typed, with a docstring: what the LM is shown).
"""

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dspy

from .calculator import calculate
from .search import search


class UnknownTool(ValueError):
    pass


@dataclass(frozen=True)
class ToolContext:
    """What tools may read: the step's own inputs (e.g. a `corpus` list) and corpora the consumer registered."""

    inputs: Mapping[str, Any] = field(default_factory=dict)
    corpora: Mapping[str, Sequence[str]] = field(default_factory=dict)


def calculator_tool(_: ToolContext, __: str) -> dspy.Tool:
    def calculator(expression: str) -> str:
        """Evaluates an arithmetic expression (+ - * / // % ** and sqrt, abs, round, min, max, log, exp, pi, e)."""
        return str(calculate(expression))

    return dspy.Tool(calculator)


def search_tool(context: ToolContext, name: str) -> dspy.Tool:
    corpus_name = name.partition(":")[2] or "default"
    step_corpus = context.inputs.get("corpus")
    if corpus_name == "default" and isinstance(step_corpus, list):
        corpus = [str(passage) for passage in step_corpus]
    elif corpus_name in context.corpora:
        corpus = list(context.corpora[corpus_name])
    else:
        raise UnknownTool(f"tool {name!r}: no corpus {corpus_name!r} in the step's inputs or the consumer's corpora")

    def search_corpus(query: str, k: int = 3) -> str:
        """Finds the passages of the corpus that best match the query."""
        hits = search(corpus, query, k=max(1, min(int(k), 10)))
        return "\n".join(f"[{rank + 1}] {passage}" for rank, passage in enumerate(hits)) or "no matching passage"

    return dspy.Tool(search_corpus, name=name.replace(":", "_"))


ToolFactory = Callable[[ToolContext, str], dspy.Tool]
REGISTRY: dict[str, ToolFactory] = {"calculator": calculator_tool, "search": search_tool}


class ToolModuleError(ValueError):
    """A tools module that cannot be used: the worker refuses to start, saying why."""


def load_tool_modules(modules: Sequence[str]) -> dict[str, Callable[..., Any]]:
    """The user's tools, by name, from each module's `TOOLS`."""
    tools: dict[str, Callable[..., Any]] = {}
    for path in modules:
        try:
            module = importlib.import_module(path)
        except ImportError as error:
            raise ToolModuleError(f"tools module {path!r} cannot be imported ({error}): is it on the workers' PYTHONPATH?") from error
        found = getattr(module, "TOOLS", None)
        if not isinstance(found, Mapping) or not all(isinstance(n, str) and callable(f) for n, f in found.items()):
            raise ToolModuleError(f"tools module {path!r} must define TOOLS, a dict of tool names to functions")
        for name, function in found.items():
            if name in REGISTRY or name in tools or ":" in name:
                raise ToolModuleError(f"tool {name!r} of {path!r} is already defined (or has a ':'): rename it")
            tools[name] = function
    return tools


def tools_for(names: Sequence[str], context: ToolContext, own: Mapping[str, Callable[..., Any]] | None = None) -> list[dspy.Tool]:
    """The tools a step names: the user's (`own`), or built-in ones (`search:<corpus>` picks a corpus)."""
    own = own or {}
    tools = []
    for name in names:
        if name in own:
            tools.append(dspy.Tool(own[name], name=name))
            continue
        factory = REGISTRY.get(name.partition(":")[0])
        if factory is None:
            raise UnknownTool(f"unknown tool {name!r} (known: {', '.join(sorted([*REGISTRY, *own]))})")
        tools.append(factory(context, name))
    return tools
