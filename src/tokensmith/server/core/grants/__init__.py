"""Grant handlers: the pure protocol core of the token endpoint, one module per grant type.

A server offers the grants it registers when it is assembled (``core/wiring.py``); the token endpoint dispatches on
``ServerContext.grants``.
"""
