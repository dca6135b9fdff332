"""The web pages served by the API process: the agent desktop and the wallboard.

Plain static files (HTML, CSS, ES modules; no build step) that talk to the REST API
under `/api/v1` and to the live-events WebSocket `/api/v1/events`. `mount_web` adds
them to the FastAPI app: `/` is the agent desktop, `/wallboard` the supervisors'
wallboard, `/static/...` the scripts and styles, `/i18n/<lang>.json` the catalogs
of every text the pages show.
"""

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
I18N_DIR = HERE / "i18n"
LANGUAGES = ("en", "zh-CN")

# The pages are small and change with the package: the browser asks again each time.
_NO_CACHE = {"Cache-Control": "no-cache"}


def mount_web(app: FastAPI) -> None:
    """Serve the pages on `app`; call it after the API routes are included."""

    @app.get("/", include_in_schema=False)
    async def desktop() -> FileResponse:
        return FileResponse(STATIC_DIR / "desktop.html", headers=_NO_CACHE)

    @app.get("/wallboard", include_in_schema=False)
    async def wallboard() -> FileResponse:
        return FileResponse(STATIC_DIR / "wallboard.html", headers=_NO_CACHE)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="web-static")
    app.mount("/i18n", StaticFiles(directory=I18N_DIR), name="web-i18n")
