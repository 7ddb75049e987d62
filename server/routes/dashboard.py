"""The live dashboard: ``/`` serves the page, ``/static/{file}`` its modules and styles.

The page (server/static/, plain HTML + ES modules, no build step) speaks only the public API:
/v1/models, /v1/samples and the /v1/stream WebSocket (docs/dashboard.md).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from server.errors import ApiError

router = APIRouter(include_in_schema=False)
STATIC = Path(__file__).resolve().parent.parent / "static"


@router.get("/")
async def page() -> FileResponse:
    return FileResponse(STATIC / "index.html")


@router.get("/static/{file}")
async def static(file: str) -> FileResponse:
    path = STATIC / file
    # A path parameter holds no "/", so only "." and ".." leave STATIC: both are folders.
    if not path.is_file():
        raise ApiError(404, f"no static file {file!r}")
    return FileResponse(path)
