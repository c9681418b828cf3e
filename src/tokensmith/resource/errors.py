"""RFC 6750 errors a resource server answers with, and the ``WWW-Authenticate`` header each one carries."""

from __future__ import annotations

from collections.abc import Iterable

from tokensmith.errors import OUTSIDE_ERROR_TEXT, description_text


# RFC 6750 3: error_description and scope use %x20-21 / %x23-5B / %x5D-7E. Descriptions are kept in that set
# (description_text); in any other quoted value, what lies outside it (quotes, backslashes, control characters,
# non-ASCII) is dropped, so that nothing can break or inject into the header.
def _quoted(value: str) -> str:
    return '"' + OUTSIDE_ERROR_TEXT.sub("", value) + '"'


class BearerTokenError(Exception):
    """A request the resource server refuses; ``status_code`` and :meth:`www_authenticate` make the response."""

    status_code = 401
    error: str | None = "invalid_token"

    def __init__(self, description: str, *, scope: Iterable[str] = ()) -> None:
        self.description = description_text(description)  # it may quote the token's claims
        super().__init__(self.description)
        self.scope = tuple(scope)

    # Whether the error is about a DPoP proof (its challenge is then the DPoP one, RFC 9449 7.1).
    dpop_error = False

    def _params(self, realm: str | None, *, with_error: bool = True, resource_metadata: str | None = None) -> list[str]:
        params = []
        if realm:
            params.append(f"realm={_quoted(realm)}")
        if self.error and with_error:
            params.append(f"error={_quoted(self.error)}")
            if self.description:
                params.append(f"error_description={_quoted(self.description)}")
        if self.scope and with_error:
            params.append(f"scope={_quoted(' '.join(self.scope))}")
        if resource_metadata:
            params.append(f"resource_metadata={_quoted(resource_metadata)}")
        return params

    def www_authenticate(
        self,
        realm: str | None = None,
        *,
        dpop_algs: str | None = None,
        dpop_only: bool = False,
        used_dpop: bool = False,
        resource_metadata: str | None = None,
    ) -> str:
        """The ``WWW-Authenticate`` value: a Bearer challenge (RFC 6750 3) and, with ``dpop_algs``, a DPoP one
        (RFC 9449 7.1) carrying the error when the request used DPoP or the error is about the proof; with
        ``dpop_only`` the DPoP challenge alone. ``resource_metadata`` (the URL of the resource's metadata,
        RFC 9728 5.1) goes in every challenge."""
        params = self._params(realm, resource_metadata=resource_metadata)
        bearer = "Bearer " + ", ".join(params) if params else "Bearer"
        if dpop_algs is None:
            return bearer
        in_dpop = dpop_only or used_dpop or self.dpop_error
        dpop_params = self._params(realm, with_error=in_dpop, resource_metadata=resource_metadata)
        dpop = "DPoP " + ", ".join([f"algs={_quoted(dpop_algs)}", *dpop_params])
        if dpop_only:
            return dpop
        if in_dpop:
            realm_only = self._params(realm, with_error=False, resource_metadata=resource_metadata)
            bearer = "Bearer " + ", ".join(realm_only) if realm_only else "Bearer"
        return f"{bearer}, {dpop}"

    def headers(self) -> dict[str, str]:
        """Headers the response carries besides ``WWW-Authenticate``."""
        return {}

    def to_dict(self) -> dict[str, str]:
        return {"error": self.error or "unauthorized", "error_description": self.description}


class MissingToken(BearerTokenError):
    """No bearer token at all: RFC 6750 3.1 says the challenge then carries no error code."""

    error = None


class InvalidToken(BearerTokenError):
    """Malformed, badly signed, expired, not yet valid, from another issuer, or for another audience."""


class DPoPProofError(BearerTokenError):
    """A DPoP proof refused (RFC 9449 7.1): missing, malformed, wrong ``htm``/``htu``/``ath``, stale, replayed."""

    error = "invalid_dpop_proof"
    dpop_error = True


class UseDPoPNonce(BearerTokenError):
    """The proof lacks the server's current nonce (RFC 9449 9): the response carries one in ``DPoP-Nonce``."""

    error = "use_dpop_nonce"
    dpop_error = True

    def __init__(self, description: str, nonce: str) -> None:
        super().__init__(description)
        self.nonce = nonce

    def headers(self) -> dict[str, str]:
        return {"DPoP-Nonce": self.nonce}


class InsufficientScope(BearerTokenError):
    """A valid token without the scopes the route needs (403, naming them)."""

    status_code = 403
    error = "insufficient_scope"

    def __init__(self, required: Iterable[str], description: str | None = None) -> None:
        required = tuple(required)
        super().__init__(description or f"this resource needs scope {' '.join(required)}", scope=required)


class ValidatorUnavailable(Exception):
    """Tokens cannot be checked right now (no keys and the authorization server unreachable): answer 503."""
