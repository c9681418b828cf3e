"""uvicorn's logging configuration with an access log that prints paths without their query strings, tokensmith's
own loggers on the same handler, and a choice of text or JSON lines (log_format.py).

A module of its own, importing little: uvicorn's worker processes load it (by reference from the pickled server
configuration) before they start answering their supervisor's health checks.
"""

from __future__ import annotations

import copy
import logging
from typing import Any, Literal

from uvicorn.config import LOGGING_CONFIG

from tokensmith.server.log_format import JsonFormatter

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")


class PathOnlyAccessLog(logging.Filter):
    """Drops the query string from uvicorn's access log lines: it can carry tokens (``id_token_hint`` on logout)."""

    def filter(self, record: logging.LogRecord) -> bool:
        # uvicorn's access record: (client, method, path with query, HTTP version, status), read by position.
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (args[0], args[1], args[2].partition("?")[0], args[3], args[4])
        return True


def log_config(log_format: LogFormat | None = None, log_level: str = "info") -> dict[str, Any]:
    """uvicorn's logging configuration with :class:`PathOnlyAccessLog` on its access logger.

    With a ``log_format`` (what ``tokensmith serve`` does, owning the process's logging) the ``tokensmith``
    loggers log at ``log_level`` and other libraries' warnings go to the same handler, as text or as JSON lines.
    Without one, loggers other than uvicorn's are left as the embedding program set them."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["path_only"] = {"()": PathOnlyAccessLog}
    config["loggers"]["uvicorn.access"]["filters"] = ["path_only"]
    if log_format is not None:
        config["loggers"]["tokensmith"] = {"handlers": ["default"], "level": log_level.upper(), "propagate": False}
        config["root"] = {"handlers": ["default"], "level": "WARNING"}
    if log_format == "json":
        config["formatters"] = {"default": {"()": JsonFormatter}, "access": {"()": JsonFormatter}}
    return config
