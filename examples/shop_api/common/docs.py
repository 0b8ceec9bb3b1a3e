"""Interactive API docs that work without the internet.

FastAPI's default /docs page loads Swagger UI from a CDN; the machines Kaizen
runs on may have no internet, so the assets come from the repository's
static/vendor/swagger-ui instead.
"""

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.staticfiles import StaticFiles

SWAGGER_UI = Path(__file__).resolve().parents[3] / "static" / "vendor" / "swagger-ui"


def install_docs(app: FastAPI) -> None:
    """Serve /docs with locally stored Swagger UI assets under /_docs/."""
    app.mount("/_docs", StaticFiles(directory=SWAGGER_UI), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} — API docs",
            swagger_js_url="/_docs/swagger-ui-bundle.js",
            swagger_css_url="/_docs/swagger-ui.css",
            swagger_favicon_url="/_docs/favicon-32x32.png",
        )
