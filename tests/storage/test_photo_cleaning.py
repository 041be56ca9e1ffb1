"""Uploaded photos are kept cleaned: decoded (a file that only starts like an image is refused), upright,
no larger than needed, and without the metadata a phone writes into them (above all the GPS position of a
resident's home, which the order itself masks until an organization takes it)."""

import io
import struct
import zlib

import pytest
from PIL import ExifTags, Image, PngImagePlugin
from sqlalchemy import func, select

from backend.db import db
from backend.storage import images
from backend.storage import service as storage
from backend.storage.models import Upload
from tests.images import image_bytes, jpeg, png

HOME = {
    ExifTags.GPS.GPSLatitudeRef: "N",
    ExifTags.GPS.GPSLatitude: (39.0, 54.0, 27.0),
    ExifTags.GPS.GPSLongitudeRef: "E",
    ExifTags.GPS.GPSLongitude: (116.0, 23.0, 17.0),
}


def _exif(orientation: int | None = None) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "某品牌手机"
    exif[ExifTags.Base.DateTime] = "2026:11:30 08:15:00"
    if orientation:
        exif[ExifTags.Base.Orientation] = orientation
    exif.get_ifd(ExifTags.IFD.GPSInfo).update(HOME)
    return exif


def _upload(client, headers, data: bytes):
    return client.post(
        "/api/v1/uploads",
        data={"file": (io.BytesIO(data), "photo.jpg")},
        headers=headers,
        content_type="multipart/form-data",
    )


def _kept(client, headers, data: bytes) -> tuple[dict, bytes]:
    response = _upload(client, headers, data)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    download = client.get(f"/api/v1/uploads/{body['id']}", headers=headers)
    assert download.status_code == 200
    assert body["size"] == len(download.data) and download.mimetype == body["content_type"]
    return body, download.data


def _nothing_kept() -> bool:
    return db.session.scalar(select(func.count()).select_from(Upload)) == 0


def test_a_phone_photos_position_and_camera_are_not_kept(client, auth):
    original = jpeg(size=(40, 30), exif=_exif().tobytes(), comment=b"3\xe5\x8f\xb7\xe6\xa5\xbc")
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(ExifTags.IFD.GPSInfo)  # what a phone sends
    body, kept = _kept(client, auth("resident_a1"), original)
    assert body["content_type"] == "image/jpeg"
    photo = Image.open(io.BytesIO(kept))
    assert photo.format == "JPEG" and photo.size == (40, 30)
    assert not photo.getexif() and "exif" not in photo.info and "comment" not in photo.info
    assert b"Exif" not in kept


def test_a_photo_taken_sideways_is_kept_upright(client, auth):
    # Orientation 6: the camera was turned, the picture is to be shown rotated a quarter turn clockwise.
    sideways = jpeg(size=(40, 20), exif=_exif(orientation=6).tobytes())
    _, kept = _kept(client, auth("resident_a1"), sideways)
    photo = Image.open(io.BytesIO(kept))
    assert photo.size == (20, 40) and not photo.getexif()


def test_text_and_metadata_in_a_png_or_webp_are_not_kept(client, auth):
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "阳光社区3号楼2单元501")
    tagged = image_bytes("PNG", (24, 24), (10, 200, 90), pnginfo=info, exif=_exif().tobytes())
    assert Image.open(io.BytesIO(tagged)).info["Comment"]
    body, kept = _kept(client, auth("resident_a1"), tagged)
    photo = Image.open(io.BytesIO(kept))
    assert body["content_type"] == "image/png" and photo.size == (24, 24)
    assert "Comment" not in photo.info and not photo.getexif()
    assert photo.convert("RGB").getpixel((5, 5)) == (10, 200, 90)  # PNG stays lossless

    webp = image_bytes("WEBP", (24, 24), (10, 200, 90), exif=_exif().tobytes())
    body, kept = _kept(client, auth("resident_a1"), webp)
    assert body["content_type"] == "image/webp" and not Image.open(io.BytesIO(kept)).getexif()


def test_a_large_photo_is_kept_at_a_screens_size(client, auth):
    _, kept = _kept(client, auth("resident_a1"), jpeg(size=(5120, 2560)))
    assert Image.open(io.BytesIO(kept)).size == (images.MAX_EDGE, images.MAX_EDGE // 2)
    _, kept = _kept(client, auth("resident_a1"), png(size=(1000, 3000)))
    assert Image.open(io.BytesIO(kept)).size == (853, images.MAX_EDGE)


def _refusal(client, headers, data: bytes) -> str:
    response = _upload(client, headers, data)
    assert response.status_code == 422, response.get_json()
    return response.get_json()["details"]["file"][0]


def test_what_only_starts_like_an_image_is_refused(client, auth):
    headers = auth("resident_a1")
    whole = jpeg(size=(64, 64), colour=(90, 30, 200))
    assert _refusal(client, headers, b"\x89PNG\r\n\x1a\n" + b"\x00" * 64) == images.DAMAGED
    assert _refusal(client, headers, whole[: len(whole) // 2]) == images.DAMAGED
    assert _refusal(client, headers, b"\xff\xd8\xff<html>not a photo</html>") == images.DAMAGED
    assert _refusal(client, headers, image_bytes("GIF", (8, 8), 3, mode="P")) == images.NOT_AN_IMAGE
    assert _refusal(client, headers, b"%PDF-1.7 a document") == images.NOT_AN_IMAGE
    assert _nothing_kept()


def _png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims a huge picture: refused before anything is decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def test_a_picture_too_large_to_decode_is_refused(client, auth):
    headers = auth("resident_a1")
    assert _refusal(client, headers, _png_claiming(5_000, 5_000)) == images.TOO_LARGE  # ours
    assert _refusal(client, headers, _png_claiming(20_000, 20_000)) == images.TOO_LARGE  # Pillow's too
    assert _nothing_kept()


def _several(kind: str, **save) -> bytes:
    first, second = Image.new("RGB", (30, 20), (200, 0, 0)), Image.new("RGB", (30, 20), (0, 200, 0))
    out = io.BytesIO()
    first.save(out, format=kind, save_all=True, append_images=[second], **save)
    return out.getvalue()


ODD_BUT_REAL = {
    # A phone's JPEG holding a second picture (MPO): kept as a JPEG of its first.
    "multi-picture JPEG": (_several("MPO", exif=_exif().tobytes()), "image/jpeg"),
    "CMYK JPEG": (image_bytes("JPEG", (30, 20), (10, 20, 30, 40), mode="CMYK"), "image/jpeg"),
    "progressive JPEG": (jpeg(size=(300, 200), progressive=True), "image/jpeg"),
    "16-bit PNG": (image_bytes("PNG", (30, 20), 1000, mode="I;16"), "image/png"),
    "palette PNG with transparency": (image_bytes("PNG", (30, 20), 3, mode="P", transparency=3), "image/png"),
    "animated PNG": (_several("PNG"), "image/png"),
    "animated WebP": (_several("WEBP"), "image/webp"),
}


@pytest.mark.parametrize("name", ODD_BUT_REAL)
def test_photos_phones_really_make_are_kept(client, auth, name):
    data, content_type = ODD_BUT_REAL[name]
    body, kept = _kept(client, auth("resident_a1"), data)
    photo = Image.open(io.BytesIO(kept))
    photo.load()
    assert body["content_type"] == content_type and photo.size[0] in (30, 300)
    assert getattr(photo, "n_frames", 1) == 1 and not photo.getexif()


def test_a_photo_is_also_served_small_for_lists_and_thumbnails(client, auth):
    headers = auth("resident_a1")
    body, kept = _kept(client, headers, jpeg(size=(2000, 1000)))
    small = client.get(f"/api/v1/uploads/{body['id']}", query_string={"size": "small"}, headers=headers)
    assert small.status_code == 200 and small.mimetype == "image/jpeg"
    assert Image.open(io.BytesIO(small.data)).size == (images.SMALL_EDGE, images.SMALL_EDGE // 2)
    assert len(small.data) < len(kept) and small.headers["Cache-Control"] == "private"
    # A photo already small is served as kept.
    tiny, kept = _kept(client, headers, png(size=(40, 30)))
    same = client.get(f"/api/v1/uploads/{tiny['id']}?size=small", headers=headers)
    assert same.data == kept
    wrong = client.get(f"/api/v1/uploads/{tiny['id']}?size=huge", headers=headers)
    assert wrong.status_code == 422 and wrong.get_json()["details"] == {"size": ["size 只能是 full 或 small"]}


def test_a_photo_kept_before_renditions_were_made_is_served_as_kept(client, auth, world):
    # Kept before photos were cleaned and given a small rendition: only a file that starts like a PNG.
    old = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    storage.storage().save("ab/" + "0" * 32, old)
    upload = Upload(
        owner_id=world.users["resident_a1"].id,
        storage_key="ab/" + "0" * 32,
        content_type="image/png",
        size=len(old),
        sha256="0" * 64,
    )
    db.session.add(upload)
    db.session.commit()
    headers = auth("resident_a1")
    for size in ("full", "small"):
        response = client.get(f"/api/v1/uploads/{upload.public_id}?size={size}", headers=headers)
        assert response.status_code == 200 and response.data == old, size
