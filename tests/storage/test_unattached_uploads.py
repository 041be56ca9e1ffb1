"""Photos nobody attached are removed a day after they were uploaded, rows and files."""

from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import select

from backend import clock
from backend.db import db
from backend.errors import ValidationFailed
from backend.storage import service as storage
from backend.storage.models import Upload
from tests.images import PNG, png
from tests.sla.calendar_data import local
from workers.storage import purge_unattached_uploads


def _file_exists(key: str) -> bool:
    try:
        storage.storage().open(key).close()
    except FileNotFoundError:
        return False
    return True


def test_uploads_left_unattached_for_a_day_are_removed_with_their_files(world):
    owner = world.users["resident_a1"].id
    with time_machine.travel(local(2026, 11, 23, 9), tick=False):
        forgotten = storage.save_upload(owner_id=owner, data=png(size=(1200, 900)))  # with a small one
        used = storage.save_upload(owner_id=owner, data=PNG)
        storage.attach(
            owner_id=owner,
            public_ids=[used.public_id],
            attached_type="order",
            attached_id=1,
            field="photo_ids",
        )
        db.session.commit()
    assert _file_exists(storage.small_key(forgotten.storage_key))
    assert not _file_exists(storage.small_key(used.storage_key))  # small already: no second file
    with time_machine.travel(local(2026, 11, 24, 8), tick=False):
        recent = storage.save_upload(owner_id=owner, data=PNG)
        # Not yet a day old: a resident may still be filling in the form.
        assert storage.purge_unattached() == 0
    keys = {u.public_id: u.storage_key for u in (forgotten, used, recent)}
    gone = forgotten.public_id
    with time_machine.travel(local(2026, 11, 24, 9, 1), tick=False):
        assert storage.purge_unattached() == 1
        kept = db.session.scalars(select(Upload.public_id).order_by(Upload.id)).all()
        assert kept == [used.public_id, recent.public_id]
        assert [_file_exists(keys[pid]) for pid in (gone, *kept)] == [False, True, True]
        assert not _file_exists(storage.small_key(keys[gone]))
        # Attaching a purged photo is refused like any unavailable one.
        with pytest.raises(ValidationFailed) as refused:
            storage.attach(
                owner_id=owner, public_ids=[gone], attached_type="order", attached_id=2, field="photo_ids"
            )
        assert refused.value.details == {"photo_ids": [f"图片不可用：{gone}"]}


def test_the_purge_goes_batch_by_batch_and_runs_as_the_workers_job(world, in_worker):
    owner = world.users["resident_a1"].id
    with time_machine.travel(local(2026, 11, 23, 9), tick=False):
        for _ in range(5):
            storage.save_upload(owner_id=owner, data=PNG)
    with time_machine.travel(local(2026, 11, 25, 9), tick=False):
        assert storage.purge_unattached(batch=2) == 5
        assert db.session.scalars(select(Upload)).all() == []
        storage.save_upload(owner_id=owner, data=PNG)
    with time_machine.travel(clock.now() + timedelta(days=2), tick=False):
        assert purge_unattached_uploads() == {"removed": 1}
