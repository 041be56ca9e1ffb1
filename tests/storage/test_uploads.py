"""Uploading a photo: only images of a reasonable size, and a retry under one Idempotency-Key is one photo
(one row, one file), however the retries arrive."""

import io
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import requests
import time_machine
from flask import current_app
from sqlalchemy import func, select

from backend import clock
from backend.db import db
from backend.storage import service as storage
from backend.storage.models import Upload
from tests.images import PNG, png

OTHER_PNG = png(colour=(20, 90, 200))


def _upload(client, headers, data=PNG, key=None):
    if key is not None:
        headers = {**headers, "Idempotency-Key": key}
    return client.post(
        "/api/v1/uploads",
        data={"file": (io.BytesIO(data), "photo.png")},
        headers=headers,
        content_type="multipart/form-data",
    )


def _files() -> set[Path]:
    root = Path(current_app.config["UPLOAD_DIR"])
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def _rows() -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(Upload))


def test_uploads_must_be_images_of_reasonable_size(client, auth):
    headers = auth("resident_a1")
    text = _upload(client, headers, data=b"hello")
    assert text.status_code == 422 and "file" in text.get_json()["details"]
    missing = client.post("/api/v1/uploads", data={}, headers=headers, content_type="multipart/form-data")
    assert missing.status_code == 422
    assert _rows() == 0


def test_a_retried_upload_under_one_key_is_the_first_photo(client, auth):
    headers = auth("resident_a1")
    before = _files()
    first = _upload(client, headers, key="photo-1")
    again = _upload(client, headers, key="photo-1")
    assert first.status_code == again.status_code == 201
    assert again.get_json()["id"] == first.get_json()["id"]
    assert _rows() == 1 and len(_files() - before) == 1
    # Without a key, or under another, each request is a photo of its own.
    assert _upload(client, headers).get_json()["id"] != first.get_json()["id"]
    assert _upload(client, headers, key="photo-2").get_json()["id"] != first.get_json()["id"]
    assert _rows() == 3 and len(_files() - before) == 3


def test_one_key_cannot_carry_other_bytes(client, auth):
    headers = auth("resident_a1")
    assert _upload(client, headers, key="photo-1").status_code == 201
    before = _files()
    other = _upload(client, headers, data=OTHER_PNG, key="photo-1")
    assert other.status_code == 422 and "Idempotency-Key" in other.get_json()["details"]
    assert _rows() == 1 and _files() == before


def test_a_key_is_the_uploaders_own(client, auth):
    mine = _upload(client, auth("resident_a1"), key="photo-1").get_json()["id"]
    theirs = _upload(client, auth("resident_b1"), key="photo-1").get_json()["id"]
    assert mine != theirs and _rows() == 2


def test_retries_of_one_upload_at_once_leave_one_row_and_one_file(auth, server):
    headers = {**auth("resident_a1"), "Idempotency-Key": "tap-once"}
    before = _files()
    barrier = threading.Barrier(12)

    def one(_) -> requests.Response:
        with requests.Session() as session:
            barrier.wait()
            return session.post(
                f"{server}/api/v1/uploads", files={"file": ("photo.png", PNG)}, headers=headers, timeout=30
            )

    with ThreadPoolExecutor(max_workers=12) as pool:
        responses = list(pool.map(one, range(12)))
    assert {r.status_code for r in responses} == {201}, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    # The requests that lost the race wrote their bytes before their commit was refused; they are gone again.
    assert _rows() == 1 and len(_files() - before) == 1


def test_a_key_whose_photo_was_purged_uploads_it_again(client, auth):
    headers = auth("resident_a1")
    first = _upload(client, headers, key="photo-1").get_json()["id"]
    with time_machine.travel(clock.now() + timedelta(days=2), tick=False):
        assert storage.purge_unattached() == 1
    again = _upload(client, headers, key="photo-1")
    assert again.status_code == 201 and again.get_json()["id"] != first
    assert _upload(client, headers, key="photo-1").get_json()["id"] == again.get_json()["id"]
    assert _rows() == 1
