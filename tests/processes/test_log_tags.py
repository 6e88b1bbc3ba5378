"""Every line a worker writes says which process wrote it, in text and in JSON."""

from __future__ import annotations

import json
import logging

from trio_asgi._logging import JSONFormatter, TextFormatter
from trio_asgi._supervisor._worker import _TaggedFormatter


def record(message: str) -> logging.LogRecord:
    return logging.LogRecord("trio_asgi", logging.INFO, __file__, 1, message, None, None)


def test_text_lines_start_with_the_pid() -> None:
    line = _TaggedFormatter(TextFormatter(), 4242).format(record("Listening"))
    assert line == "[4242] INFO     Listening"


def test_json_lines_carry_a_pid_key() -> None:
    line = _TaggedFormatter(JSONFormatter(), 4242).format(record('a "quoted" {brace}'))
    data = json.loads(line)
    assert data["pid"] == 4242
    assert data["message"] == 'a "quoted" {brace}'
