"""One JSON object per log line (``tokensmith serve --log-format json``), for log collectors that index fields.

Each line has ``time`` (UTC, ISO 8601), ``level``, ``logger`` and ``message``, plus ``exception`` when the record
carries one. Access-log lines also have ``client``, ``method``, ``path`` and ``status``. Standard library only:
uvicorn's worker processes import this before they serve.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        args = record.args
        # uvicorn's access record: (client, method, path, HTTP version, status), read by position.
        if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
            line.update(client=args[0], method=args[1], path=args[2], status=args[4])
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)
