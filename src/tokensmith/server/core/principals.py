"""Nothing outlives the user or the client it was issued for.

Users and clients live in the configuration, so removing one takes effect at the next start. Every check that
accepts something issued earlier asks whether its principals still exist: the browser session (authorization
endpoint), the authorization code and the refresh token (token endpoint), the subject and actor tokens of an
exchange, introspection and userinfo.

Which tokens are a user's is read from the token itself. A token of this server issued for a user's sign-in (the
authorization code and refresh grants, and every token exchanged from one: a user claim is copied into an
exchanged token) carries ``auth_time`` (RFC 9068 2.2.1, OpenID Connect Core 2); its ``sub`` must then be a
configured user. Tokens without it (client credentials, tokens exchanged from a trusted issuer's token) have a
``sub`` that is not a local user, and are judged by their client alone. A token names its client in
``client_id`` (access tokens) or ``azp`` (ID tokens).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Protocol

from tokensmith.config.server import ServerConfig
from tokensmith.errors import invalid_request
from tokensmith.server.core.context import ServerContext

# The claim that marks a token issued for a local user's sign-in.
USER_TOKEN_CLAIM = "auth_time"


def is_user_token(claims: Mapping[str, Any]) -> bool:
    return USER_TOKEN_CLAIM in claims


def removed_principal(config: ServerConfig, *, subject: str, client_id: str | None, for_user: bool) -> str | None:
    """Why something issued to ``client_id`` for ``subject`` is void (its user or client is no longer
    configured), or None while both exist. ``for_user``: ``subject`` is a local user."""
    if client_id is not None and config.client_by_id(client_id) is None:
        return f"the client {client_id!r} it was issued to no longer exists"
    if for_user and config.user_by_name(subject) is None:
        return "the user it was issued for no longer exists"
    return None


def removed_token_principal(config: ServerConfig, claims: Mapping[str, Any]) -> str | None:
    """:func:`removed_principal` for the verified claims of a token this server issued."""
    client_id = claims.get("client_id", claims.get("azp"))
    return removed_principal(
        config,
        subject=str(claims.get("sub")),
        client_id=client_id if isinstance(client_id, str) else None,
        for_user=is_user_token(claims),
    )


class ExchangeInput(Protocol):
    """What the token exchange knows of a validated subject or actor token."""

    @property
    def claims(self) -> Mapping[str, Any]: ...

    @property
    def jti(self) -> str | None: ...

    @property
    def is_local(self) -> bool: ...


async def check_exchange_input(ctx: ServerContext, token: ExchangeInput, role: Literal["subject", "actor"]) -> None:
    """Refuse a subject or actor token of this server whose user or client was removed, and revoke its lineage
    (every token exchanged from it, and the refresh tokens exchanges issued from them)."""
    if not token.is_local:
        return
    reason = removed_token_principal(ctx.config, token.claims)
    if reason is None:
        return
    if token.jti is not None:
        await ctx.store.revoke_token_lineage(token.jti, ctx.clock())
    raise invalid_request(f"{role}_token is no longer valid: {reason}")
