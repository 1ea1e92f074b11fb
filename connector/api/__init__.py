"""The REST API: one flask-smorest Blueprint per resource, OpenAPI at /api/openapi.json, docs at /api/docs."""

from __future__ import annotations

from flask import Blueprint, Flask
from flask_smorest import Api
from swagger_ui_bundle import swagger_ui_path

API_PREFIX = "/api/v1"


def init_app(app: Flask) -> None:
    app.config.update(
        API_TITLE="smsconnect",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        # Served from the installed swagger-ui-bundle package: the docs page works with no internet.
        OPENAPI_SWAGGER_UI_URL="/api/docs/assets/",
        API_SPEC_OPTIONS={
            "security": [{"bearerAuth": []}],
            "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
        },
    )
    app.register_blueprint(
        Blueprint("docs_assets", __name__, static_folder=swagger_ui_path, static_url_path="/api/docs/assets")
    )
    api = Api(app)
    from connector.api import (
        campaigns,
        contacts,
        groups,
        imports,
        keys,
        links,
        messages,
        plugins,
        prices,
        providers,
        rules,
        segments,
        templates,
        workspace,
    )

    for module in (contacts, imports, groups, segments, keys, workspace, links, campaigns, providers, prices, rules,
                   messages, templates, plugins):
        api.register_blueprint(module.blp, url_prefix=f"{API_PREFIX}/{module.blp.name}")
    from connector.api import previews

    api.register_blueprint(previews.blp, url_prefix=previews.URL_PREFIX)
    app.extensions["smsconnect_api"] = api
