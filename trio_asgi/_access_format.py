"""The access-log format's fields and its check: a leaf module.

Both :mod:`._config` (which checks ``access_log_format`` when a Config is built) and
:mod:`._logging` (which writes the lines) need these; keeping them here means neither
imports the other's module for it.
"""

from __future__ import annotations

import re
import string

from ._errors import ConfigError

#: Fields an access-log format may use, with what each holds.
ACCESS_LOG_FIELDS: dict[str, str] = {
    "client": 'client address, "127.0.0.1:49370" or "-"',
    "method": 'request method, "GET"',
    "path": "request target up to '?', as received (escaped)",
    "query": "request target after '?', as received (escaped)",
    "request_line": '"GET /x?y=1 HTTP/1.1"',
    "http_version": '"1.1"',
    "status": "response status code (for WebSocket lines: 101, the reject status or close code)",
    "reason": 'status phrase, "OK" (for WebSocket lines: "WebSocket accept", ...)',
    "bytes": "response body bytes sent",
    "duration_ms": "time from request head to response end, in milliseconds",
    "user_agent": 'User-Agent header or "-"',
    "referer": 'Referer header or "-"',
    "time": "local time the line was written, ISO 8601",
}


def check_access_log_format(log_format: str) -> frozenset[str]:
    """Check an access-log format and return the field names it uses.

    Raises:
        ConfigError: Unknown field, or a format spec that does not fit the field.
    """
    used: set[str] = set()
    try:
        for _, name, _, _ in string.Formatter().parse(log_format):
            if name is not None:
                used.add(re.split(r"[.\[]", name, maxsplit=1)[0])
    except ValueError as exc:
        raise ConfigError(f"access_log_format: {exc}") from None
    unknown = sorted(used - ACCESS_LOG_FIELDS.keys())
    if unknown:
        known = ", ".join(ACCESS_LOG_FIELDS)
        raise ConfigError(f"access_log_format: unknown field {unknown[0]!r}; fields: {known}")
    sample: dict[str, object] = dict.fromkeys(ACCESS_LOG_FIELDS, "-")
    sample.update(status=200, bytes=0, duration_ms=0.0)
    try:
        log_format.format_map(sample)
    except (ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
        raise ConfigError(f"access_log_format: {exc}") from None
    return frozenset(used)
