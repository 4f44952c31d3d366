"""The plain-text prompt a base model continues, built from what a DSPy adapter asked (a PromptView).

    Classify the customer's support message into one category.

    Message: I was charged twice.
    Category: billing

    Message: Where is my parcel?
    Category:

Instructions, then each demo as a block of `Field: value` lines, then the inputs and the outputs decoded
so far; the prompt ends with the next output field's label, which the model completes.
"""

from collections.abc import Mapping, Sequence

from .prompt import PromptView

# What DSPy writes for a demo's missing field (a labeled demo of a ChainOfThought has no reasoning).
NOT_SUPPLIED = "Not supplied for this particular example."


def label(name: str) -> str:
    """`next_tool_name` → `Next Tool Name`."""
    return " ".join(word.capitalize() for word in name.split("_") if word) or name


def one_line(value: str) -> str:
    return " ".join(value.split())


def field_lines(values: Mapping[str, str], names: Sequence[str]) -> list[str]:
    """`Field: value` for each name that has a value; an empty value leaves the label alone."""
    lines = []
    for name in names:
        value = values.get(name)
        if value is None or value.strip().startswith(NOT_SUPPLIED):
            continue
        text = one_line(value)
        lines.append(f"{label(name)}: {text}" if text else f"{label(name)}:")
    return lines


def prompt_text(view: PromptView, decoded: Mapping[str, str], next_field: str, demos: int | None = None) -> str:
    """The prompt for `next_field`, after the outputs already `decoded`; `demos` keeps only the last ones."""
    inputs = list(view.inputs)
    outputs = [field.name for field in view.requested]
    kept = view.demos if demos is None else view.demos[max(0, len(view.demos) - demos) :]
    blocks = [view.instructions] if view.instructions else []
    blocks += ["\n".join(field_lines(demo, inputs + outputs)) for demo in kept]
    current = field_lines(view.inputs, inputs) + field_lines(decoded, list(decoded)) + [f"{label(next_field)}:"]
    blocks.append("\n".join(current))
    return "\n\n".join(block for block in blocks if block)


def content_free(view: PromptView) -> PromptView:
    """The same prompt with every input empty: what the model answers when the input says nothing."""
    return PromptView(
        requested=view.requested,
        inputs={name: "" for name in view.inputs},
        demo_outputs=view.demo_outputs,
        wants_json=view.wants_json,
        last_user="",
        system=view.system,
        demos=view.demos,
    )
