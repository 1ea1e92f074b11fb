"""The smsconnect web app: `create_app(settings)` builds it; API blueprints, docs, errors, CLI."""

from __future__ import annotations

import logging

from flask import Flask

from core import runtime
from core.settings import Settings


def create_app(settings: Settings | None = None) -> Flask:
    """Builds the app for these settings (from the environment when None)."""
    settings = settings or Settings.from_env()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_body_bytes,  # uploads raise it per request
        JSON_SORT_KEYS=False,
    )
    # Database, Redis and the shared settings; jobs run in-process (tests) see the same runtime.
    app.extensions["smsconnect"] = runtime.configure(settings)

    from connector import api, errors, extensions

    extensions.init_app(app)
    api.init_app(app)
    errors.init_app(app)  # after the Api, so our handlers replace flask-smorest's
    from webhooks import routes as webhook_routes

    webhook_routes.init_app(app)  # delivery reports from SMS gateways
    from webhooks import plugins as plugin_triggers

    plugin_triggers.init_app(app)  # CRM plugin triggers (Salesforce Outbound Messages, Flow callouts)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    from connector import redirect

    redirect.init_app(app)  # short links are answered in front of the routing above (one Redis call)
    return app
