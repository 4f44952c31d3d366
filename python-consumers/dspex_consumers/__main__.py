"""python -m dspex_consumers --transport stdio|kafka [...]: a dspex Python consumer."""

import argparse
import json
import logging
import os
import socket
import sys
from pathlib import Path

from .executor.lm_calls import RECORD_MODES
from .executor.run import ExecutorSettings
from .executor.tools import ToolModuleError, load_tool_modules
from .lms.test_lm import load_answers


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    # No abbreviations: `--sasl-password <secret>` must not pass as `--sasl-password-env`.
    parser = argparse.ArgumentParser(prog="python -m dspex_consumers", description=__doc__, allow_abbrev=False)
    parser.add_argument("--transport", choices=["stdio", "kafka"], required=True)
    parser.add_argument("--worker", default=f"python-{socket.gethostname()}-{os.getpid()}", help="name in results")
    parser.add_argument("--test-answers", default=os.environ.get("DSPEX_TEST_LM_ANSWERS"), help="rules for dspex/test (JSON)")
    parser.add_argument(
        "--corpus",
        action="append",
        default=[c for c in os.environ.get("DSPEX_CORPORA", "").split(os.pathsep) if c],
        metavar="NAME=FILE",
        help="a corpus for the search:NAME tool and Retrieve steps (DSPEX_CORPORA: several, os.pathsep between)",
    )
    parser.add_argument(
        "--tools",
        action="append",
        default=[m for m in os.environ.get("DSPEX_TOOL_MODULES", "").split(",") if m],
        metavar="MODULE",
        help="a Python module whose TOOLS (name -> function) ReAct steps may name",
    )
    parser.add_argument("--brokers", default=os.environ.get("DSPEX_KAFKA_BROKERS"), help="kafka: bootstrap servers")
    parser.add_argument("--group", default="dspex-consumers", help="kafka: consumer group")
    parser.add_argument("--ssl", action="store_true", default=os.environ.get("DSPEX_KAFKA_SSL") == "1", help="kafka: TLS to the brokers")
    parser.add_argument("--sasl-mechanism", default=os.environ.get("DSPEX_KAFKA_SASL_MECHANISM"), help="kafka: plain, scram-sha-256 or scram-sha-512")
    parser.add_argument("--sasl-username", default=os.environ.get("DSPEX_KAFKA_SASL_USERNAME"), help="kafka: SASL user")
    parser.add_argument("--sasl-password-env", default=os.environ.get("DSPEX_KAFKA_SASL_PASSWORD_ENV"), help="kafka: the variable holding the SASL password")
    parser.add_argument("--namespace", default=os.environ.get("DSPEX_KAFKA_NAMESPACE", ""), help="kafka: prefix of the topics and the group (as the TS log's namespace)")
    parser.add_argument("--max-step-ms", type=int, default=600_000, help="kafka: the longest step (poll interval)")
    parser.add_argument("--log-level", default=os.environ.get("DSPEX_LOG_LEVEL", "INFO"))
    parser.add_argument(
        "--trace-lm",
        default=os.environ.get("DSPEX_TRACE_LM") or "full",
        help="what each LM call records in the step's result: full (messages and completion) or usage",
    )
    args = parser.parse_args(argv)
    if args.trace_lm not in RECORD_MODES:
        parser.error(f"--trace-lm (or DSPEX_TRACE_LM) must be one of {', '.join(RECORD_MODES)}, not {args.trace_lm!r}")
    return args


def load_corpus(path: str) -> list[str]:
    """A JSON list of passages, or one passage per line."""
    text = Path(path).read_text()
    if text.lstrip().startswith("["):
        return [str(passage) for passage in json.loads(text)]
    return [line.strip() for line in text.splitlines() if line.strip()]


def settings_from(args: argparse.Namespace) -> ExecutorSettings:
    corpora = {}
    for entry in args.corpus:
        name, _, path = entry.partition("=")
        corpora[name] = load_corpus(path)
    answers = load_answers(args.test_answers) if args.test_answers else []
    return ExecutorSettings(test_answers=answers, corpora=corpora, tools=load_tool_modules(args.tools), lm_calls=args.trace_lm)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for noisy in ("LiteLLM", "litellm", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        settings = settings_from(args)
    except ToolModuleError as error:
        print(f"dspex consumer: {error}", file=sys.stderr)
        return 2
    if args.transport == "stdio":
        from .transports.stdio import serve_stdio

        return serve_stdio(settings, args.worker)
    if not args.brokers:
        print("dspex consumer: --brokers (or DSPEX_KAFKA_BROKERS) is required for --transport kafka", file=sys.stderr)
        return 2
    from .transports.kafka import KafkaOptions, serve_kafka
    from .wire.events import DLQ_TOPIC, STEP_RESULTS_TOPIC, STEPS_TOPIC

    ns = args.namespace
    options = KafkaOptions(
        brokers=args.brokers, group=ns + args.group, worker=args.worker, max_step_ms=args.max_step_ms, ssl=args.ssl,
        steps_topic=ns + STEPS_TOPIC, results_topic=ns + STEP_RESULTS_TOPIC, dlq_topic=ns + DLQ_TOPIC,
        sasl_mechanism=args.sasl_mechanism, sasl_username=args.sasl_username, sasl_password_env=args.sasl_password_env,
    )
    return serve_kafka(options, settings)


if __name__ == "__main__":
    sys.exit(main())
