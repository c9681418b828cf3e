"""uvicorn's logging configuration with an access log that prints paths without their query strings.

A module of its own, importing little: uvicorn's worker processes load it (by reference from the pickled server
configuration) before they start answering their supervisor's health checks.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from uvicorn.config import LOGGING_CONFIG


class PathOnlyAccessLog(logging.Filter):
    """Drops the query string from uvicorn's access log lines: it can carry tokens (``id_token_hint`` on logout)."""

    def filter(self, record: logging.LogRecord) -> bool:
        # uvicorn's access record: (client, method, path with query, HTTP version, status), read by position.
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (args[0], args[1], args[2].partition("?")[0], args[3], args[4])
        return True


def log_config() -> dict[str, Any]:
    """uvicorn's logging configuration with :class:`PathOnlyAccessLog` on its access logger."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["path_only"] = {"()": PathOnlyAccessLog}
    config["loggers"]["uvicorn.access"]["filters"] = ["path_only"]
    return config
