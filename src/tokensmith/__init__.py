"""tokensmith: an OAuth 2.0 / OpenID Connect security token service with first-class Token Exchange (RFC 8693)."""

__version__ = "0.1.0"
