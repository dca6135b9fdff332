"""Case attachments: upload (multipart), list, download.

Who may: whoever may read the case (the tenant's staff). Another tenant's case or
attachment is 404, as for every object.
"""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel

from telportal.api.deps import PlatformDep, ScopeDep
from telportal.api.paths import API_PREFIX
from telportal.api.resource_routes import ERRORS
from telportal.crm.attachments import CaseAttachments, Upload, served_type
from telportal.errors import Invalid, NotFound, TooLarge
from telportal.tenancy.roles import Role, Scope

CHUNK = 64 * 1024


class AttachmentOut(BaseModel):
    id: str
    case_id: str
    filename: str
    content_type: str
    size: int
    sha256: str
    uploaded_by: str
    created_at: datetime


def _tenant(scope: Scope) -> str:
    if scope.tenant_id is None or not scope.role.at_least(Role.AGENT):
        raise NotFound("case")
    return scope.tenant_id


def attachment_router() -> APIRouter:
    router = APIRouter(
        prefix=API_PREFIX + "/cases/{case_id}/attachments", tags=["cases"], responses=ERRORS
    )

    def files(platform: Any) -> CaseAttachments:
        return CaseAttachments(platform.db, platform.config.data_dir)

    @router.post("", status_code=201, response_model=AttachmentOut, summary="Attach a file")
    async def upload(
        case_id: str,
        request: Request,
        file: Annotated[UploadFile, File(description="The file (multipart/form-data)")],
        platform: PlatformDep,
        scope: ScopeDep,
    ) -> Any:
        """Up to 20 MB; stored and synced before the 201. The case's history gets an
        `attachment` entry."""
        tenant_id = _tenant(scope)
        store = files(platform)
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > store.max_bytes + 64 * 1024:
            raise TooLarge(f"the file is over {store.max_bytes // (1024 * 1024)} MB")

        async def chunks() -> Any:
            while chunk := await file.read(CHUNK):
                yield chunk

        if not file.filename:
            raise Invalid("file", "the upload has no file name")
        row = await store.add(
            scope, tenant_id, case_id,
            Upload(file.filename, file.content_type or "application/octet-stream", chunks()),
        )  # fmt: skip
        return AttachmentOut.model_validate(row, from_attributes=True)

    @router.get("", response_model=list[AttachmentOut], summary="A case's attachments")
    async def list_attachments(case_id: str, platform: PlatformDep, scope: ScopeDep) -> Any:
        rows = await files(platform).list(_tenant(scope), case_id)
        return [AttachmentOut.model_validate(r, from_attributes=True) for r in rows]

    @router.get("/{attachment_id}", summary="Download an attachment", response_class=FileResponse)
    async def download(
        case_id: str, attachment_id: str, platform: PlatformDep, scope: ScopeDep
    ) -> Any:
        row, path = await files(platform).get(_tenant(scope), case_id, attachment_id)
        if not path.is_file():
            raise NotFound("attachment file")
        return FileResponse(
            path,
            media_type=served_type(row.content_type),
            filename=row.filename,
            content_disposition_type="attachment",
            headers={"X-Content-Type-Options": "nosniff"},
        )

    return router
