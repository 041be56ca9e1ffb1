"""A photo as it is kept: decoded (so only real images are kept), turned upright, no larger than anyone
needs to see it, and written again without its metadata.

The metadata is the point. A phone photo's EXIF says where and when it was taken, and by which phone: a
resident's photo of their door carries their home's GPS position to every organization an order is offered
to, while the order itself hides its exact address and location until one takes it.
"""

import io
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from backend.errors import ValidationFailed

CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
# Longest edge of the small rendition lists and thumbnails load (?size=small): a phone shows them at a
# fraction of the screen, and nine full photos would cost a volunteer's data plan megabytes.
SMALL_EDGE = 480
# Longest edge kept: a receipt stays legible and a photo fills a phone's screen twice over, while a 50 MP
# original would cost a volunteer's data plan for nothing.
MAX_EDGE = 2560
# Decoded sizes refused before decoding: a small file can claim a huge picture (a decompression bomb). JPEGs
# are decoded at a reduced scale when shrunk, so they may claim more: a 50 MP phone photo is ordinary.
MAX_PIXELS = {"JPEG": 64_000_000, "PNG": 16_000_000, "WEBP": 16_000_000}
JPEG_QUALITY = 85
WEBP_QUALITY = 85

NOT_AN_IMAGE = "只能上传 JPG、PNG 或 WebP 图片"
DAMAGED = "图片已损坏或不完整，请重新拍摄或选择"
TOO_LARGE = "图片像素过大，请压缩后再上传"


@dataclass(frozen=True)
class Photo:
    data: bytes
    content_type: str
    width: int
    height: int
    # At most SMALL_EDGE on its longest edge; None when the photo is that small itself.
    small: bytes | None = None


def clean(data: bytes, field: str = "file") -> Photo:
    """The photo in ``data`` re-encoded in its own format, upright, its longest edge at most MAX_EDGE, with
    no EXIF, XMP, text or comments (its colour profile kept), and its small rendition made from the same
    decoded picture; a 422 on ``field`` for anything else."""
    try:
        image = Image.open(io.BytesIO(data), formats=list(CONTENT_TYPES))
    except UnidentifiedImageError:
        problem = DAMAGED if _looks_like_a_photo(data) else NOT_AN_IMAGE
        raise ValidationFailed(details={field: [problem]}) from None
    except Image.DecompressionBombError:  # Pillow's own limit, above ours
        raise ValidationFailed(details={field: [TOO_LARGE]}) from None
    except (OSError, ValueError, SyntaxError):
        raise ValidationFailed(details={field: [DAMAGED]}) from None
    # A JPEG with more pictures in it (MPO: a phone's depth map or preview) is kept as its first picture.
    kind = "JPEG" if image.format == "MPO" else image.format
    if image.width * image.height > MAX_PIXELS[kind]:
        raise ValidationFailed(details={field: [TOO_LARGE]})
    try:
        if kind == "JPEG":
            # Decode at 1/2, 1/4 or 1/8 scale when the photo is kept smaller anyway (libjpeg does it as it
            # reads, far faster than decoding whole and shrinking).
            image.draft(image.mode, _fitted(image.size, MAX_EDGE))
        upright = ImageOps.exif_transpose(image)
        upright.thumbnail((MAX_EDGE, MAX_EDGE), Image.Resampling.LANCZOS)
        icc_profile = image.info.get("icc_profile")
        written = _encode(upright, kind, icc_profile=icc_profile)
        small = None
        if max(upright.size) > SMALL_EDGE:
            shrunk = upright.copy()
            shrunk.thumbnail((SMALL_EDGE, SMALL_EDGE), Image.Resampling.LANCZOS)
            small = _encode(shrunk, kind, icc_profile=icc_profile)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise ValidationFailed(details={field: [DAMAGED]}) from None
    return Photo(written, CONTENT_TYPES[kind], upright.width, upright.height, small)


def _looks_like_a_photo(data: bytes) -> bool:
    """Whether the bytes begin as a JPEG, PNG or WebP file does: a damaged photo, not another file."""
    return data.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")) or (
        data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    )


def _fitted(size: tuple[int, int], edge: int) -> tuple[int, int]:
    width, height = size
    scale = min(1.0, edge / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _encode(image: Image.Image, kind: str, *, icc_profile: bytes | None) -> bytes:
    # Of what was read, only the colour profile and transparency are written again: Pillow would otherwise
    # carry some of the original's info over (a JPEG's comment, for one).
    image.info = {k: v for k, v in image.info.items() if k == "transparency"}
    options: dict = {"icc_profile": icc_profile} if icc_profile else {}
    if kind == "JPEG":
        if image.mode not in ("RGB", "L", "CMYK"):
            image = image.convert("RGB")
        options.update(quality=JPEG_QUALITY)
    elif kind == "WEBP":
        if image.mode not in ("RGB", "RGBA"):
            image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
        options.update(quality=WEBP_QUALITY)
    elif image.mode not in ("1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"):
        image = image.convert("RGBA")
    out = io.BytesIO()
    image.save(out, format=kind, **options)
    return out.getvalue()
