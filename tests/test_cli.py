"""The `sandan` command's offline subcommands."""

import json

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
