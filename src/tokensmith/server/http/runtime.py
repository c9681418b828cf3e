"""What the endpoints share for the life of the app: the protocol context plus web-only helpers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from tokensmith.server.core.context import ServerContext
from tokensmith.server.core.passwords import SecretVerifier, UserPasswordChecker
from tokensmith.server.core.rate_limit import LoginThrottle
from tokensmith.server.metrics import ServerMetrics

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

# Pages are never framed (clickjacking on the login and consent forms) and never cached.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; form-action 'self' http: https:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@dataclass(slots=True)
class Runtime:
    ctx: ServerContext
    secrets: SecretVerifier
    passwords: UserPasswordChecker
    login_throttle: LoginThrottle
    metrics: ServerMetrics
    templates: Jinja2Templates

    def page(self, request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("issuer", self.ctx.issuer)
        response = self.templates.TemplateResponse(request, template, context, status_code=status_code)
        response.headers.update(PAGE_HEADERS)
        return response

    def message(
        self, request: Request, title: str, message: str, *, status_code: int = 200, detail: str | None = None
    ) -> HTMLResponse:
        return self.page(
            request,
            "message.html",
            status_code=status_code,
            title=title,
            message=message,
            detail=detail,
            is_error=status_code >= 400,
        )


def new_templates() -> Jinja2Templates:
    # Jinja2Templates turns autoescaping on for .html templates.
    return Jinja2Templates(directory=str(TEMPLATES_DIR))


def runtime(request: Request) -> Runtime:
    value: Runtime = request.app.state.runtime
    return value


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"
