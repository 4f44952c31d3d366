"""Exceptions → the wire's StepError {kind, message, retryable}. Messages never carry secrets."""

import functools
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import litellm.exceptions as llm
from dspy.utils.exceptions import AdapterParseError
from pydantic import ValidationError

from ..lms import UnknownModel
from ..lms.offline import OfflineModelMissing
from .tools import UnknownTool
from .types import UnknownType

MAX_MESSAGE = 2000
_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|CREDENTIALS?)$", re.I)
_KEY_SHAPES = re.compile(r"\b(sk-[A-Za-z0-9_\-]{8,}|AIza[A-Za-z0-9_\-]{20,}|(?:xox|ghp|gho)[A-Za-z0-9_\-]{10,})")


class StepTimeout(TimeoutError):
    pass


class BadStep(ValueError):
    """The step itself cannot run (missing inputs, bad signature...): retrying will not help."""


class InvalidOutput(ValueError):
    """The LM's answer parsed but breaks the signature's types or constraints."""


@dataclass(frozen=True)
class StepError:
    kind: str
    message: str
    retryable: bool

    def to_wire(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "retryable": self.retryable}


def classify(error: BaseException, deterministic: bool = False) -> StepError:
    """`deterministic`: the same prompt gives the same answer (temperature 0), so a parse retry is futile."""
    kind, retryable = _kind_of(error, deterministic)
    return StepError(kind, redact(f"{type(error).__name__}: {error}")[:MAX_MESSAGE], retryable)


def _kind_of(error: BaseException, deterministic: bool) -> tuple[str, bool]:
    match error:
        case StepTimeout() | llm.Timeout():
            return "timeout", True
        case llm.RateLimitError():
            return "rate_limit", True
        # A field's value the adapter could not read as its type (DSPy's parse_value lets pydantic's error out).
        case AdapterParseError() | ValidationError():
            return "parse", not deterministic
        case InvalidOutput():
            return "invalid_output", not deterministic
        case llm.AuthenticationError() | llm.PermissionDeniedError() | llm.BudgetExceededError() | OfflineModelMissing():
            return "lm_error", False
        case (
            llm.BadRequestError() | llm.NotFoundError() | llm.UnprocessableEntityError()
            | BadStep() | UnknownTool() | UnknownType() | UnknownModel()
        ):
            return "bad_request", False
        case llm.APIError() | llm.APIConnectionError() | llm.ServiceUnavailableError() | llm.InternalServerError():
            return "lm_error", True
        case llm.OpenAIError() | ConnectionError():
            return "lm_error", True
    return "internal", False


def secret_values() -> list[str]:
    """The values of this process's secret-looking environment variables."""
    env = os.environ
    return [env[name] for name in env if _secret_name(name) and len(env[name]) >= 8]


@functools.cache
def _secret_name(name: str) -> bool:
    return _SECRET_NAME.search(name) is not None


def redact(message: str, secrets: Sequence[str] | None = None) -> str:
    """Removes `secrets` (by default: secret_values()) and key-shaped strings."""
    for value in secret_values() if secrets is None else secrets:
        message = message.replace(value, "***")
    return _KEY_SHAPES.sub("***", message)
