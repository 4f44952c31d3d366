"""Security of the Python consumer: no code from the log runs, only registered tools, secrets stay out of
events and logs, and Kafka TLS/SASL settings reach confluent-kafka."""

import ast
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from conftest import REPO, load_json

from dspex_consumers.executor.run import execute_step
from dspex_consumers.transports.kafka import KafkaOptions, consumer_config, producer_config, security_config
from dspex_consumers.worker import result_event

PACKAGE = Path(__file__).resolve().parents[1] / "dspex_consumers"
DISPATCHED = load_json(REPO / "tests" / "vectors" / "events" / "StepDispatched.v1.json")
SECRET = "sk-test-SECRET-4f9a1c2e7b3d5a6f8e0c"

# Modules that turn bytes into code or objects, and builtins that run code.
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill", "cloudpickle", "jsonpickle", "yaml"}
UNSAFE_CALLS = {"eval", "exec", "compile", "__import__"}


def unsafe_uses(source: str) -> list[str]:
    """Imports of the unsafe modules, and calls of the code-running builtins (bare or as builtins.X)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if a.name.split(".")[0] in UNSAFE_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in UNSAFE_MODULES:
            found.append(f"from {node.module} import ...")
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in UNSAFE_CALLS:
                found.append(f"line {node.lineno}: {func.id}(...)")
            elif (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and (func.value.id in UNSAFE_MODULES or (func.value.id == "builtins" and func.attr in UNSAFE_CALLS))
            ):
                found.append(f"line {node.lineno}: {func.value.id}.{func.attr}(...)")
    return found


def test_no_code_in_the_package_unpickles_or_evaluates_data():
    """A guard over the whole package: data from the log is only ever read with json (and ast.literal_eval)."""
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 10  # the guard looked at the package
    found = [f"{path.relative_to(PACKAGE)}: {use}" for path in files for use in unsafe_uses(path.read_text())]
    assert found == []


def test_the_guard_would_catch_an_unpickling_consumer():
    source = "import pickle\nimport marshal as m\nvalue = pickle.loads(record)\neval(text)\nbuiltins.exec(code)\nre.compile(p)\n"
    assert unsafe_uses(source) == ["import pickle", "import marshal", "line 3: pickle.loads(...)", "line 4: eval(...)", "line 5: builtins.exec(...)"]


@pytest.mark.parametrize("tool", ["os.system", "__import__('os').system('true')", "subprocess", "calculator;rm", "", "eval"])
def test_a_react_step_naming_an_unregistered_tool_is_refused(tool):
    step = {**DISPATCHED["data"], "module": "ReAct", "tools": ["calculator", tool], "lm": {"model": "dspex/test"}}
    outcome = execute_step(step)
    assert outcome.error is not None
    assert outcome.error.kind == "bad_request" and not outcome.error.retryable
    assert f"unknown tool {tool!r}" in outcome.error.message
    assert outcome.usage["calls"] == 0  # refused before any LM call


class EchoingProvider(BaseHTTPRequestHandler):
    """An OpenAI-style endpoint that refuses the key and quotes it back, as real providers do."""

    def do_POST(self):
        auth = self.headers.get("Authorization", "")
        body = json.dumps({"error": {"message": f"Incorrect API key provided: {auth}", "type": "invalid_request_error", "code": "invalid_api_key"}}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_):
        pass


@pytest.fixture
def provider(monkeypatch):
    server = HTTPServer(("127.0.0.1", 0), EchoingProvider)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}/v1"
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_API_BASE", base)
    monkeypatch.setenv("OPENAI_BASE_URL", base)
    yield base
    server.shutdown()


def test_a_provider_quoting_the_key_back_leaks_it_nowhere(provider, caplog):
    caplog.set_level(logging.DEBUG)
    step = {**DISPATCHED["data"], "lm": {"model": "openai/gpt-4o-mini", "temperature": 0}}
    outcome = execute_step(step)
    assert outcome.error is not None and outcome.error.kind == "lm_error"
    assert "Incorrect API key provided" in outcome.error.message  # the provider's answer is kept...
    assert "***" in outcome.error.message  # ...with the key masked
    failed = result_event({**DISPATCHED, "data": step}, outcome, "w")
    assert SECRET not in json.dumps(failed)
    assert SECRET[6:] not in json.dumps(failed)
    assert SECRET not in caplog.text


class AnsweringProvider(BaseHTTPRequestHandler):
    """An OpenAI-style endpoint that answers, quoting the key back in fields of its response besides the text."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        auth = self.headers.get("Authorization", "")
        text = "[[ ## answer ## ]]\nParis\n\n[[ ## completed ## ]]"
        body = json.dumps({
            "id": f"chatcmpl-{auth}", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini", "system_fingerprint": auth,
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 50, "completion_tokens": 9, "total_tokens": 59},
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_):
        pass


def test_the_lm_calls_of_an_answered_step_carry_no_key_from_the_environment_or_the_lm_config(monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    server = HTTPServer(("127.0.0.1", 0), AnsweringProvider)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}/v1"
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_API_BASE", base)
    monkeypatch.setenv("OPENAI_BASE_URL", base)
    try:
        step = {**DISPATCHED["data"], "lm": {"model": "openai/gpt-4o-mini", "temperature": 0, "apiKey": SECRET, "api_key": SECRET}}
        outcome = execute_step(step)
    finally:
        server.shutdown()
    assert outcome.ok, outcome.error
    completed = result_event({**DISPATCHED, "data": step}, outcome, "w")
    [call] = completed["data"]["lmCalls"]
    assert call["completion"].startswith("[[ ## answer ## ]]\nParis") and call["promptTokens"] == 50
    assert call["cost"] > 0  # LiteLLM knows gpt-4o-mini's price
    written = json.dumps(completed)
    assert SECRET not in written and SECRET[6:] not in written
    assert SECRET not in caplog.text


def test_security_settings_pass_through_to_confluent_kafka(monkeypatch):
    monkeypatch.setenv("DSPEX_TEST_KAFKA_PASSWORD", "hunter2-password")
    plain = KafkaOptions(brokers="b:9093")
    assert "security.protocol" not in consumer_config(plain)
    assert consumer_config(KafkaOptions(brokers="b:9093", ssl=True))["security.protocol"] == "SSL"
    sasl = KafkaOptions(brokers="b:9093", ssl=True, sasl_mechanism="scram-sha-512", sasl_username="dspex", sasl_password_env="DSPEX_TEST_KAFKA_PASSWORD")
    expected = {"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "dspex", "sasl.password": "hunter2-password"}
    for config in (consumer_config(sasl), producer_config(sasl)):
        assert {key: config[key] for key in expected} == expected
    over_plaintext = KafkaOptions(brokers="b:9093", sasl_mechanism="plain", sasl_username="u", sasl_password_env="DSPEX_TEST_KAFKA_PASSWORD")
    assert security_config(over_plaintext)["security.protocol"] == "SASL_PLAINTEXT"
    assert security_config(over_plaintext)["sasl.mechanism"] == "PLAIN"


def test_the_clients_accept_the_security_settings():
    """confluent-kafka builds both clients from them (librdkafka checks the names and values)."""
    from confluent_kafka import Consumer, Producer

    options = KafkaOptions(brokers="127.0.0.1:1", ssl=False, sasl_mechanism="scram-sha-256", sasl_username="u", sasl_password_env="PATH")
    Consumer(consumer_config(options)).close()
    Producer(producer_config(options)).flush(0)


def test_an_incomplete_sasl_setup_is_a_clear_error_without_the_password(monkeypatch):
    monkeypatch.delenv("DSPEX_MISSING_PASSWORD", raising=False)
    with pytest.raises(ValueError, match="DSPEX_MISSING_PASSWORD is not set"):
        security_config(KafkaOptions(brokers="b", sasl_mechanism="plain", sasl_username="u", sasl_password_env="DSPEX_MISSING_PASSWORD"))
    with pytest.raises(ValueError, match="unknown mechanism 'gssapi'"):
        security_config(KafkaOptions(brokers="b", sasl_mechanism="gssapi", sasl_username="u", sasl_password_env="X"))
    with pytest.raises(ValueError, match="username"):
        security_config(KafkaOptions(brokers="b", sasl_mechanism="plain"))


def test_the_command_line_takes_the_password_variable_not_the_password():
    from dspex_consumers.__main__ import parse_args

    args = parse_args(["--transport", "kafka", "--ssl", "--sasl-mechanism", "plain", "--sasl-username", "u", "--sasl-password-env", "KAFKA_PASSWORD"])
    assert (args.ssl, args.sasl_mechanism, args.sasl_username, args.sasl_password_env) == (True, "plain", "u", "KAFKA_PASSWORD")
    with pytest.raises(SystemExit):
        parse_args(["--transport", "kafka", "--sasl-password", "hunter2"])
