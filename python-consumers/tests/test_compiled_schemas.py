"""The compiled schema check (fastjsonschema) answers for valid events; jsonschema decides the rest. The
two must never disagree in the compiled check's favour: an event the compiled check accepts is one
jsonschema accepts. Checked on every valid vector and seeded mutations of them (the seed is printed)."""

import copy
import json
import os
import random
from typing import Any

from conftest import VECTORS
from jsonschema.exceptions import best_match

from dspex_consumers.wire.schemas import catalog, envelope_schema, schema_of

VALID = sorted((VECTORS / "events").glob("*.json"))
SEED = int(os.environ.get("DSPEX_TEST_SEED", "17"))

ODD_VALUES: list[Any] = [
    None, True, 0, 1.5, -1, 2**53, "", "x", "00000000-0000-0000-0000-00000000000g", "2026-13-45T99:00:00Z",
    [], [1], {}, {"a": 1}, "0" * 300,
]


def paths_of(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths_of(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += paths_of(child, (*prefix, index))
    return found


def mutated(event: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    copied = copy.deepcopy(event)
    for _ in range(rng.randint(1, 3)):
        path = rng.choice(paths_of(copied)[1:])
        parent = copied
        for part in path[:-1]:
            parent = parent[part]
        last = path[-1]
        if isinstance(parent, dict) and rng.random() < 0.3:
            del parent[last]
        elif isinstance(parent, dict) and rng.random() < 0.2:
            parent[f"{last}_extra"] = rng.choice(ODD_VALUES)
        else:
            parent[last] = copy.deepcopy(rng.choice(ODD_VALUES))
        if not paths_of(copied)[1:]:
            break
    return copied


def verdicts(event: dict[str, Any]) -> list[tuple[str, bool, bool]]:
    """Per schema the event meets: (name, the compiled check accepts, jsonschema accepts)."""
    schemas = [("envelope", envelope_schema())]
    version = catalog().get(event.get("type")) if isinstance(event.get("type"), str) else None
    if version is not None:
        schemas.append((event["type"], schema_of(event["type"], version)))
    found = []
    for name, schema in schemas:
        try:
            schema.check(event)
            compiled = True
        except Exception:
            compiled = False
        found.append((name, compiled, best_match(schema.validator.iter_errors(event)) is None))
    return found


def test_the_compiled_check_accepts_every_valid_vector_and_leaves_it_as_it_was():
    for path in VALID:
        event = json.loads(path.read_text())
        assert all(compiled and interpreted for _, compiled, interpreted in verdicts(event)), path.name
        assert event == json.loads(path.read_text()), f"{path.name}: the check added defaults"


def test_the_compiled_check_is_never_more_lenient_than_jsonschema():
    print(f"seed {SEED} (DSPEX_TEST_SEED)")
    rng = random.Random(SEED)
    events = [json.loads(path.read_text()) for path in VALID]
    refused = 0
    for _ in range(3_000):
        event = mutated(rng.choice(events), rng)
        for name, compiled, interpreted in verdicts(event):
            assert interpreted or not compiled, f"{name}: compiled check accepted {json.dumps(event)[:400]}"
            refused += not interpreted
    # The mutations reach the schemas' checks, not only the envelope's.
    assert refused > 1_000
