"""The `sandan` command's offline subcommands."""

import json
import re

import pytest

from backend import cli
from backend.cli import build_parser, main


def test_openapi_writes_the_spec_to_a_file(tmp_path, capsys):
    target = tmp_path / "openapi.json"
    main(["openapi", str(target)])
    spec = json.loads(target.read_text(encoding="utf-8"))
    assert spec["info"]["title"] == "Sandan 三单 API"
    assert "/api/v1/auth/login" in spec["paths"]
    assert "OpenAPI 已写入" in capsys.readouterr().out


def test_every_documented_command_exists():
    commands = build_parser()._subparsers._group_actions[0].choices
    assert {
        "demo",
        "serve",
        "worker",
        "migrate",
        "openapi",
        "seed-demo",
        "fake-wechat",
        "rotate-keys",
    } <= set(commands)


def test_rotate_keys_without_the_old_key_says_what_to_do_not_a_traceback(app, world, monkeypatch, capsys):
    """`sandan rotate-keys` run with the old key already dropped: a message in Chinese naming the fix (keep
    the old key after the new one until the rotation is done) and exit status 1, not cryptography's bare
    InvalidToken traceback."""
    from backend.db import db
    from backend.privacy import service as privacy
    from tests.factories import rotating_keys

    resident = world.users["resident_a1"]
    privacy.grant_consent(user_id=resident.id, kind="phone", text_version="2026-11")
    privacy.store(resident, "phone", "13800138000", subject_user_id=resident.id)
    db.session.commit()
    resident_id = resident.id
    monkeypatch.setattr(cli, "_app", lambda: app)
    with rotating_keys(app) as drop_old_key:
        drop_old_key()
        with pytest.raises(SystemExit) as exit:
            main(["rotate-keys"])
    assert exit.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith(
        f"无法轮换密钥，未做任何修改：表 users 字段 phone 中 id 为 {resident_id} 的行，"
        "其加密值无法用已配置的任何密钥解密。\n"
    )
    assert "SANDAN_ENCRYPTION_KEYS" in err and "旧密钥" in err
    # All Chinese but the names an operator types or looks up: the variable, the table, the column, the row's
    # key (id, not a position: 第 N 行 of a table has no stable meaning).
    for name in ("SANDAN_ENCRYPTION_KEYS", "users", "phone", " id "):
        err = err.replace(name, "")
    assert re.search("[A-Za-z]", err) is None, err


def _migrate(app, monkeypatch, capsys) -> str:
    monkeypatch.setattr(cli, "_app", lambda: app)
    main(["migrate"])
    return capsys.readouterr().out


def test_migrate_gives_a_fresh_install_what_ships_with_the_product(app, monkeypatch, capsys):
    """A fresh install offers residents the shipped service catalog, besides the official holidays, the
    notification templates and the errand types: nobody has to type them in first."""
    from sqlalchemy import func, select

    from backend.catalog.models import ServiceCategory
    from backend.catalog.service import shipped_catalog
    from backend.db import db
    from backend.errands.models import ErrandType
    from backend.notify.models import NotificationTemplate
    from backend.sla.models import CalendarDay

    out = _migrate(app, monkeypatch, capsys)
    shipped = [entry["code"] for entry in shipped_catalog()]
    codes = db.session.scalars(select(ServiceCategory.code).order_by(ServiceCategory.sort_order)).all()
    assert codes == shipped
    assert f"新增服务分类: {len(shipped)}" in out
    for model in (ErrandType, NotificationTemplate, CalendarDay):
        assert db.session.scalar(select(func.count()).select_from(model)) > 0, model.__name__
    # Run again (every deploy runs it): nothing is added twice.
    out = _migrate(app, monkeypatch, capsys)
    assert db.session.scalar(select(func.count()).select_from(ServiceCategory)) == len(shipped)
    assert "新增服务分类: 0" in out


def test_migrate_leaves_a_catalog_the_street_changed_as_it_is(app, monkeypatch, capsys):
    """A catalog with any category in it is the street's: what an admin renamed, turned off or removed is
    not put back, and no shipped category is added beside theirs."""
    from sqlalchemy import select

    from backend.catalog.models import ServiceCategory
    from backend.catalog.service import load_catalog, shipped_catalog
    from backend.db import db

    load_catalog(shipped_catalog()[:3])
    first, second, third = db.session.scalars(select(ServiceCategory).order_by(ServiceCategory.id)).all()
    first.name, second.enabled = "改过的名字", False
    db.session.delete(third)
    db.session.commit()

    _migrate(app, monkeypatch, capsys)
    db.session.expire_all()
    kept = db.session.execute(
        select(ServiceCategory.code, ServiceCategory.name, ServiceCategory.enabled)
    ).all()
    assert sorted(kept) == sorted([(first.code, "改过的名字", True), (second.code, second.name, False)])
