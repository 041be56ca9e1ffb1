"""Real images for tests, made with Pillow: uploads are decoded, so a few magic bytes no longer pass."""

import io

from PIL import Image


def image_bytes(
    kind: str = "PNG", size: tuple[int, int] = (16, 12), colour=(230, 160, 60), mode: str = "RGB", **save
) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, colour).save(out, format=kind, **save)
    return out.getvalue()


def png(colour=(230, 160, 60), size: tuple[int, int] = (16, 12)) -> bytes:
    return image_bytes("PNG", size, colour)


def jpeg(colour=(230, 160, 60), size: tuple[int, int] = (16, 12), **save) -> bytes:
    return image_bytes("JPEG", size, colour, **save)


PNG = png()


def same_picture(data: bytes, original: bytes) -> bool:
    """Whether ``data`` shows what ``original`` shows: same format, size and pixels (a PNG re-encoded)."""
    first, second = Image.open(io.BytesIO(data)), Image.open(io.BytesIO(original))
    return (first.format, first.size, first.tobytes()) == (second.format, second.size, second.tobytes())
