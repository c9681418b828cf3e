"""The authorization server: a pure protocol core (grants, client authentication, policy, tokens) and thin
ASGI endpoints over it."""
