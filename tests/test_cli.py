"""The `sandan` command's offline subcommands."""

import json

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
    monkeypatch.setattr(cli, "_app", lambda: app)
    with rotating_keys(app) as drop_old_key:
        drop_old_key()
        with pytest.raises(SystemExit) as exit:
            main(["rotate-keys"])
    assert exit.value.code == 1
    err = capsys.readouterr().err
    assert "SANDAN_ENCRYPTION_KEYS" in err and "旧密钥" in err and "users.phone" in err
