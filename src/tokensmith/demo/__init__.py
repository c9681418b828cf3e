"""The article's system, runnable: a client app, ``user-service`` and ``message-service`` around the authorization
server, started together by ``tokensmith demo`` (see docs/demo.md)."""
