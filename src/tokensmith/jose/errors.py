"""Why a JWT is refused, as exception classes: callers tell the cases apart by type, never by message.

A message says what is wrong without naming the token, so that a caller can put it after its own words
("subject_token is invalid: ..."); a :class:`MalformedJWT` message completes "<the token> ...".
"""

from __future__ import annotations


class InvalidJWT(Exception):
    """A token that must not be accepted."""


class MalformedJWT(InvalidJWT):
    """Not a compact JWS we can read (shape, size, base64url, JSON). Its message completes "<the token> ..."."""


class UnacceptableJWT(InvalidJWT):
    """A readable JWS whose header or algorithm is refused."""


class UnknownKey(InvalidJWT):
    """No key of the issuer suits the token's ``kid`` and ``alg``."""


class BadSignature(InvalidJWT):
    """The signature does not verify."""


class InvalidClaims(InvalidJWT):
    """Claims refused (expired, not yet valid, a claim of the wrong type...). Its message completes "<the token> ..."."""


class KeysUnavailable(Exception):
    """The issuer's keys could not be fetched and no held key suits the token: an outage, not a bad token."""


class InvalidDPoPProof(InvalidJWT):
    """A DPoP proof (RFC 9449 4) refused; its message is a whole sentence naming the proof."""
