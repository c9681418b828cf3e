"""``json.dumps`` without its per-call setup, for the hot path.

Each ``json.dumps`` call with any argument (and each ``JSONEncoder.encode``) builds a new C encoder before it
encodes anything; for the small objects of a token request (JWT claims, the token response, an audit row) that
setup is most of the cost. :func:`json_dumper` builds the same C encoder once, so it returns exactly the text
``json.dumps`` would return with the same arguments (tests/test_json_text.py compares them).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

Dumps = Callable[[Any], str]


def json_dumper(*, ensure_ascii: bool = True, compact: bool = False, allow_nan: bool = True) -> Dumps:
    """``json.dumps(value, ensure_ascii=..., allow_nan=..., separators=(",", ":") if compact else default)``."""
    item_separator, key_separator = (",", ":") if compact else (", ", ": ")
    make_encoder = getattr(json.encoder, "c_make_encoder", None)
    if make_encoder is None:  # an interpreter without the C accelerator

        def dumps_slowly(value: Any) -> str:
            return json.dumps(
                value, ensure_ascii=ensure_ascii, allow_nan=allow_nan, separators=(item_separator, key_separator)
            )

        return dumps_slowly
    defaults = json.JSONEncoder()
    # markers=None: no check for circular references, impossible in the plain data encoded here (one would end in
    # RecursionError instead of ValueError).
    encode = make_encoder(
        None,
        defaults.default,
        json.encoder.encode_basestring_ascii if ensure_ascii else json.encoder.encode_basestring,
        None,
        key_separator,
        item_separator,
        False,  # sort_keys
        False,  # skipkeys
        allow_nan,
    )

    def dumps(value: Any) -> str:
        return "".join(encode(value, 0))

    return dumps
