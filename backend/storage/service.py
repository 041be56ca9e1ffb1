"""Uploads: check what a file is by decoding it (not by its name), keep it without its metadata, attach it
to what it documents."""

import hashlib
import logging
import secrets
from collections.abc import Callable
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, select, update

from backend import clock
from backend.db import db
from backend.errors import NotFound, ValidationFailed
from backend.storage import images
from backend.storage.backends import LocalStorage, Storage
from backend.storage.models import Upload

MAX_BYTES = 5 * 1024 * 1024
MAX_PER_ITEM = 9  # the mini-program's image picker allows nine
# A photo never attached is kept this long (a resident may upload, then finish the form later), then
# removed: it documents nothing, and it may show someone's home.
UNATTACHED_KEPT = timedelta(hours=24)
PURGE_BATCH = 500

log = logging.getLogger(__name__)


def storage() -> Storage:
    app = current_app
    backend = app.extensions.get("sandan_storage")
    if backend is None:
        backend = LocalStorage(app.config["UPLOAD_DIR"])
        app.extensions["sandan_storage"] = backend
    return backend


def _commit_now(write: Callable[[], Upload]) -> Upload:
    upload = write()
    db.session.commit()
    return upload


def save_upload(
    *, owner_id: int, data: bytes, commit: Callable[[Callable[[], Upload]], Upload] = _commit_now
) -> Upload:
    """Store a photo for its owner, cleaned (storage.images: upright, no larger than needed, without its
    metadata); refuse anything too big or not a JPEG, PNG or WebP image.

    ``commit(write)`` runs ``write`` (the file, then its row) and commits, or returns an upload made before
    (a retry under the same Idempotency-Key). The file is written first so that no row ever names a missing
    file; bytes that end up named by no row (a refused commit, a retry answered with the first upload) are
    removed again, rather than kept on disk where no purge would find them.
    """
    if not data:
        raise ValidationFailed(details={"file": ["文件为空"]})
    if len(data) > MAX_BYTES:
        raise ValidationFailed(details={"file": [f"图片不能超过 {MAX_BYTES // (1024 * 1024)} MB"]})
    # Its small rendition is kept beside it, made here once rather than on every view: a list of nine
    # thumbnails would otherwise decode nine photos.
    photo = images.clean(data)
    key = f"{secrets.token_hex(1)}/{secrets.token_hex(16)}"

    def write() -> Upload:
        storage().save(key, photo.data)
        if photo.small is not None:
            storage().save(small_key(key), photo.small)
        upload = Upload(
            owner_id=owner_id,
            storage_key=key,
            content_type=photo.content_type,
            size=len(photo.data),
            sha256=hashlib.sha256(photo.data).hexdigest(),
        )
        db.session.add(upload)
        db.session.flush()
        return upload

    try:
        upload = commit(write)
    except BaseException:
        db.session.rollback()
        _remove_unless_named(key)
        raise
    if upload.storage_key != key:
        _remove_unless_named(key)
    return upload


def _remove_unless_named(key: str) -> None:
    """Remove the file under ``key`` once it is certain no committed row names it; when that cannot be
    read (the database is gone), leave it: a file too many, never a row without its file."""
    try:
        named = db.session.scalar(select(Upload.id).where(Upload.storage_key == key))
    except Exception:
        log.exception("uploads: could not tell whether the file %s is kept; left on disk", key)
        return
    if named is None:
        _delete_files(key)


def get_own(*, owner_id: int, public_id: str) -> Upload:
    upload = db.session.scalar(select(Upload).where(Upload.public_id == public_id))
    if upload is None or upload.owner_id != owner_id:
        raise NotFound("文件不存在")
    return upload


def attach(
    *, owner_id: int, public_ids: list[str], attached_type: str, attached_id: int, field: str
) -> list[Upload]:
    """Attach the owner's unattached uploads to a thing, in the caller's transaction."""
    if len(public_ids) > MAX_PER_ITEM:
        raise ValidationFailed(details={field: [f"最多 {MAX_PER_ITEM} 张图片"]})
    if len(set(public_ids)) != len(public_ids):
        raise ValidationFailed(details={field: ["图片重复"]})
    # Claimed by one conditional UPDATE, not read and then written: of two requests attaching one upload
    # at once, the second waits on the first's row lock, then finds it attached and is refused.
    claimed = db.session.scalars(
        update(Upload)
        .where(
            Upload.public_id.in_(public_ids),
            Upload.owner_id == owner_id,
            Upload.attached_type.is_(None),
        )
        .values(attached_type=attached_type, attached_id=attached_id, attached_at=clock.now())
        .returning(Upload)
    ).all()
    found = {u.public_id: u for u in claimed}
    if problems := [pid for pid in public_ids if pid not in found]:
        # The caller's transaction, which the refusal rolls back, takes back what was claimed.
        raise ValidationFailed(details={field: [f"图片不可用：{', '.join(problems)}"]})
    return [found[pid] for pid in public_ids]


def attached_to(*, attached_type: str, attached_id: int) -> list[Upload]:
    return list(
        db.session.scalars(
            select(Upload)
            .where(Upload.attached_type == attached_type, Upload.attached_id == attached_id)
            .order_by(Upload.id)
        )
    )


def small_key(key: str) -> str:
    """Where a photo's small rendition is kept, beside it."""
    return key + "-small"


def _delete_files(key: str) -> None:
    storage().delete(key)
    storage().delete(small_key(key))


def read(upload: Upload, size: str = "full") -> bytes:
    """The photo's bytes as kept, or (``size="small"``) its small rendition: the photo itself when it has
    none (it is small already, or was kept before renditions were made)."""
    if size == "small":
        try:
            with storage().open(small_key(upload.storage_key)) as f:
                return f.read()
        except FileNotFoundError:
            pass
    with storage().open(upload.storage_key) as f:
        return f.read()


def purge_unattached(*, kept: timedelta = UNATTACHED_KEPT, batch: int = PURGE_BATCH) -> int:
    """Remove the uploads nobody attached within ``kept`` of uploading them, rows then files; return how
    many. Each row goes by a DELETE that still requires it unattached, so of a purge and an attach at once
    one wins: the photo is attached and kept, or gone and the attach refused."""
    cutoff = clock.now() - kept
    removed = 0
    while True:
        keys = db.session.scalars(
            delete(Upload)
            .where(
                Upload.id.in_(
                    select(Upload.id)
                    .where(Upload.attached_type.is_(None), Upload.created_at < cutoff)
                    .order_by(Upload.id)
                    .limit(batch)
                ),
                Upload.attached_type.is_(None),
            )
            .returning(Upload.storage_key)
        ).all()
        # The rows first: a file whose removal fails is left on disk with no row naming it, never a row
        # naming a file that is gone.
        db.session.commit()
        for key in keys:
            try:
                _delete_files(key)
            except OSError:
                log.exception("uploads: the file %s of a purged upload could not be removed", key)
        removed += len(keys)
        if len(keys) < batch:
            return removed
