"""The shared test vectors (tests/vectors/): the Python side accepts and refuses exactly what TS does."""

import base64
import json

import pytest
from conftest import VECTORS, load_json

from dspex_consumers.transports.kafka import KafkaOptions, producer_config
from dspex_consumers.wire.codec import decode_bytes
from dspex_consumers.wire.ids import derived_id, uuid_v5
from dspex_consumers.wire.partition import partition_for
from dspex_consumers.wire.schemas import catalog

VALID = sorted((VECTORS / "events").glob("*.json"))
INVALID = load_json(VECTORS / "invalid.json")


def test_there_is_a_valid_vector_for_every_event_type():
    assert {path.name.split(".")[0] for path in VALID} == set(catalog())


@pytest.mark.parametrize("path", VALID, ids=lambda path: path.stem)
def test_valid_vectors_decode(path):
    decoded = decode_bytes(path.read_bytes())
    assert decoded.ok, decoded.reason
    assert decoded.event == json.loads(path.read_text())


@pytest.mark.parametrize("vector", INVALID, ids=lambda vector: vector["name"])
def test_invalid_vectors_are_refused_with_the_same_reason(vector):
    raw = base64.b64decode(vector["base64"]) if "base64" in vector else vector["text"].encode("utf-8")
    decoded = decode_bytes(raw)
    assert not decoded.ok
    assert vector["reason"] in decoded.reason


@pytest.mark.parametrize("vector", load_json(VECTORS / "ids.json"), ids=lambda v: v["fn"] + ":" + v["id"][:8])
def test_ids_match_the_typescript_side(vector):
    if vector["fn"] == "uuidV5":
        assert uuid_v5(vector["name"]) == vector["id"]
    else:
        assert derived_id(vector["cause"], vector["discriminator"]) == vector["id"]


def test_partitions_match_the_typescript_side():
    for vector in load_json(VECTORS / "partitions.json"):
        assert partition_for(vector["key"], vector["partitions"]) == vector["partition"], vector


def test_the_kafka_producer_uses_the_java_partitioner():
    assert producer_config(KafkaOptions(brokers="localhost:9092"))["partitioner"] == "murmur2_random"
