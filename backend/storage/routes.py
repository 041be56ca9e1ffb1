from flask import Response, g

from backend.auth import access
from backend.extensions import Blueprint
from backend.storage import service
from backend.storage.schemas import UploadFormSchema, UploadSchema

blp = Blueprint("uploads", __name__, description="图片上传")


@blp.post("/uploads")
@access.signed_in
@blp.arguments(UploadFormSchema, location="files")
@blp.response(201, UploadSchema)
def upload(files):
    """上传一张图片（点单照片、回单凭证），得到的 id 在点单或回单时引用。"""
    return service.save_upload(owner_id=g.user.id, data=files["file"].read(service.MAX_BYTES + 1))


@blp.get("/uploads/<string:upload_id>")
@access.signed_in
@blp.response(200, content_type="image/*")
def download(upload_id):
    """下载自己上传的图片（已附在工单上的图片从工单处下载）。"""
    item = service.get_own(owner_id=g.user.id, public_id=upload_id)
    return Response(service.read(item), mimetype=item.content_type, headers={"Cache-Control": "private"})
