"""Reads DSPy adapter prompts (ChatAdapter or JSONAdapter): which fields are asked for, which were given."""

import ast
import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any

_HEADER = re.compile(r"\[\[ ## (\w+) ## \]\]")
_CHAT_REQUEST = re.compile(r"Respond with the corresponding output fields, starting with the field (.*)$", re.S)
_JSON_REQUEST = re.compile(r"Respond with a JSON object in the following order of fields: (.*)$", re.S)
_OBJECTIVE = re.compile(r"your objective is:(.*)$", re.S)
_TYPE_HINT = re.compile(r"\(must be formatted as a valid Python (.+)\)$", re.S)


@dataclass(frozen=True)
class RequestedField:
    name: str
    python_type: str  # as the adapter wrote it: "str", "int", "Literal['a', 'b']", "dict[str, Any]"...


@dataclass(frozen=True)
class PromptView:
    requested: list[RequestedField]
    inputs: dict[str, str]
    demo_outputs: list[dict[str, str]]
    wants_json: bool
    last_user: str
    system: str = ""  # the system message: the adapter's field list and the signature's instructions
    demos: list[dict[str, str]] = field(default_factory=list)  # each demo's inputs and outputs, as text

    @property
    def instructions(self) -> str:
        """The signature's instructions, as the adapter wrote them after its field list."""
        match = _OBJECTIVE.search(self.system)
        lines = match.group(1).splitlines() if match else []
        return "\n".join(line.strip() for line in lines).strip()


def text_of(message: dict[str, Any]) -> str:
    content = message.get("content", "")
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content or "")


def read_prompt(messages: list[dict[str, Any]]) -> PromptView:
    last_user = next((text_of(m) for m in reversed(messages) if m.get("role") == "user"), "")
    wants_json = bool(_JSON_REQUEST.search(last_user))
    return PromptView(
        requested=requested_fields(last_user),
        inputs=sections(_JSON_REQUEST.split(_CHAT_REQUEST.split(last_user)[0])[0]),
        demo_outputs=[_assistant_fields(text_of(m)) for m in messages[:-1] if m.get("role") == "assistant"],
        wants_json=wants_json,
        last_user=last_user,
        system="\n".join(text_of(m) for m in messages if m.get("role") == "system"),
        demos=_demos(messages[:-1]),
    )


def _demos(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Each assistant turn with the user turn before it: a demo's outputs and inputs."""
    pairs = itertools.pairwise(messages)
    return [
        {**sections(text_of(user)), **_assistant_fields(text_of(assistant))}
        for user, assistant in pairs
        if user.get("role") == "user" and assistant.get("role") == "assistant"
    ]


def requested_fields(last_user: str) -> list[RequestedField]:
    chat = _CHAT_REQUEST.search(last_user)
    if chat:
        body = chat.group(1).split(", and then ending with the marker for")[0]
        parts = [part.strip() for part in body.split(", then ")]
        names = [(_HEADER.search(part), part) for part in parts]
        return [RequestedField(match.group(1), _type_hint(part)) for match, part in names if match]
    plain = _JSON_REQUEST.search(last_user)
    if plain:
        parts = [part.strip() for part in plain.group(1).rstrip().rstrip(".").split(", then ")]
        fields = []
        for part in parts:
            name = re.match(r"`(\w+)`", part)
            if name:
                fields.append(RequestedField(name.group(1), _type_hint(part)))
        return fields
    return []


def _type_hint(part: str) -> str:
    match = _TYPE_HINT.search(part.rstrip(".").strip())
    return match.group(1).strip() if match else "str"


def sections(text: str) -> dict[str, str]:
    """`[[ ## name ## ]]\\nvalue` blocks → {name: value}."""
    found: dict[str, str] = {}
    matches = list(_HEADER.finditer(text))
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        found[match.group(1)] = text[match.end() : end].strip()
    return found


def _assistant_fields(text: str) -> dict[str, str]:
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            value = json.loads(stripped)
            return {key: _as_text(item) for key, item in value.items()} if isinstance(value, dict) else {}
        except json.JSONDecodeError:
            return {}
    return {name: value for name, value in sections(text).items() if name != "completed"}


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def literal_options(python_type: str) -> list[Any] | None:
    """The values of `Literal[...]`, or None for any other type."""
    match = re.fullmatch(r"Literal\[(.*)\]", python_type.strip(), re.S)
    if not match:
        return None
    try:
        return list(ast.literal_eval(f"[{match.group(1)}]"))
    except (ValueError, SyntaxError):
        return None
