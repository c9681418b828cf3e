"""Protocol errors, free of any web framework.

Every rule in the core raises an :class:`OAuthError`; the web glue turns it into the RFC 6749 section 5.2
JSON body (``error``, ``error_description``) with the status and headers carried here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

# RFC 6749 5.2 (and RFC 6750 3): error_description is printable ASCII without '"' and '\\'; so is every quoted value
# of a WWW-Authenticate challenge (tokensmith.resource).
OUTSIDE_ERROR_TEXT = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")
MAX_DESCRIPTION_LENGTH: Final = 500


def description_text(text: str) -> str:
    """``text`` as an ``error_description`` may carry it: a double quote becomes a single one, any other character
    outside the RFC's set a '?', and more than :data:`MAX_DESCRIPTION_LENGTH` characters are cut (ending "...").
    Descriptions quote what a client sent; this keeps an error from echoing unbounded or unprintable input."""
    text = OUTSIDE_ERROR_TEXT.sub(lambda match: "'" if match.group() == '"' else "?", text)
    if len(text) > MAX_DESCRIPTION_LENGTH:
        text = text[: MAX_DESCRIPTION_LENGTH - 3] + "..."
    return text


@dataclass(eq=False)
class OAuthError(Exception):
    """An error response defined by RFC 6749 (and extensions such as RFC 8693 and RFC 8707). ``description`` is
    kept as :func:`description_text` makes it."""

    error: str
    description: str = ""
    status_code: int = 400
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.description = description_text(self.description)
        super().__init__(f"{self.error}: {self.description}" if self.description else self.error)

    def to_dict(self) -> dict[str, str]:
        body = {"error": self.error}
        if self.description:
            body["error_description"] = self.description
        return body


def invalid_request(description: str) -> OAuthError:
    return OAuthError("invalid_request", description)


def invalid_client(description: str, *, scheme: str = "Basic") -> OAuthError:
    # RFC 6749 5.2: 401 with a WWW-Authenticate naming the scheme the client used (or may use).
    return OAuthError(
        "invalid_client",
        description,
        status_code=401,
        headers={"WWW-Authenticate": f'{scheme} realm="tokensmith", error="invalid_client"'},
    )


def invalid_grant(description: str) -> OAuthError:
    return OAuthError("invalid_grant", description)


def unauthorized_client(description: str) -> OAuthError:
    return OAuthError("unauthorized_client", description)


def unsupported_grant_type(description: str) -> OAuthError:
    return OAuthError("unsupported_grant_type", description)


def invalid_scope(description: str) -> OAuthError:
    return OAuthError("invalid_scope", description)


def invalid_target(description: str) -> OAuthError:
    return OAuthError("invalid_target", description)


class ConfigError(Exception):
    """A configuration file or setting is wrong; the message names the file, the key and the problem."""
