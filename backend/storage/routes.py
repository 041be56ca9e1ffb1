import hashlib

from flask import Response, g

from backend import idempotency
from backend.auth import access
from backend.extensions import Blueprint
from backend.storage import service
from backend.storage.models import Upload
from backend.storage.schemas import PhotoQuerySchema, UploadFormSchema, UploadSchema

blp = Blueprint("uploads", __name__, description="图片上传")


@blp.post("/uploads")
@access.signed_in
@blp.arguments(UploadFormSchema, location="files")
@blp.response(201, UploadSchema)
@blp.doc(**idempotency.DOC)
def upload(files):
    """上传一张图片（点单照片、回单凭证），得到的 id 在点单或回单时引用。带 Idempotency-Key 重试不会重复。"""
    data = files["file"].read(service.MAX_BYTES + 1)
    # A retry must send the same bytes: the key is held to their digest, as a JSON request's to its body.
    digest = {"sha256": hashlib.sha256(data).hexdigest()}
    return service.save_upload(
        owner_id=g.user.id,
        data=data,
        commit=lambda write: idempotency.create_once("uploads", Upload, write, body=digest),
    )


def photo_response(upload: Upload, size: str) -> Response:
    """A photo for the one allowed to see it: kept by their client, never by a shared cache."""
    return Response(
        service.read(upload, size), mimetype=upload.content_type, headers={"Cache-Control": "private"}
    )


@blp.get("/uploads/<string:upload_id>")
@access.signed_in
@blp.arguments(PhotoQuerySchema, location="query")
@blp.response(200, content_type="image/*")
def download(args, upload_id):
    """下载自己上传的图片（已附在工单上的图片从工单处下载）。"""
    item = service.get_own(owner_id=g.user.id, public_id=upload_id)
    return photo_response(item, args["size"])
