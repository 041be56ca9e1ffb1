"""The ``sandan`` command: demo, serve, worker, migrate, openapi, seed-demo, fake-wechat, rotate-keys."""

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from backend.config import PROJECT_ROOT


def _app():
    from backend import create_app

    return create_app()


def cmd_migrate(args) -> None:
    """Apply every migration to the configured database."""
    from flask_migrate import upgrade

    app = _app()
    Path(app.config["INSTANCE_DIR"]).mkdir(parents=True, exist_ok=True)
    with app.app_context():
        upgrade()
        # The official holiday notices ship with the product; admins' own entries are never overwritten.
        from backend.sla.service import seed_official_calendar

        seeded = seed_official_calendar()
        from backend.notify.service import seed_templates

        templates = seed_templates()
        from backend.errands.service import seed_errand_types

        errand_types = seed_errand_types()
        # The shipped service catalog, into an empty catalog only: once there is one, it is the street's.
        from backend.catalog.service import seed_shipped_catalog

        categories = seed_shipped_catalog()
        # Organizations' records for recommendations, counted from the history already there.
        from backend.db import db
        from backend.orders.recommend import refresh_records

        records = refresh_records()
        db.session.commit()
    print("数据库已迁移到最新版本; 法定节假日:", json.dumps(seeded, ensure_ascii=False))
    print("新增订阅消息模板:", json.dumps(templates, ensure_ascii=False))
    print("新增代办类型:", json.dumps(errand_types, ensure_ascii=False))
    print("新增服务分类:", categories)
    print("社会组织近半年记录:", records)


def cmd_seed_demo(args) -> None:
    """Load demo data (refused in production)."""
    from backend import demo

    app = _app()
    with app.app_context():
        counts = demo.seed(production=app.config["IS_PRODUCTION"])
    print("演示数据:", json.dumps(counts, ensure_ascii=False))


def cmd_openapi(args) -> None:
    """Write the OpenAPI document to a file (or stdout with ``-``)."""
    from backend.extensions import api

    app = _app()
    with app.app_context():
        spec = json.dumps(api.spec.to_dict(), ensure_ascii=False, indent=2)
    if args.output == "-":
        print(spec)
    else:
        Path(args.output).write_text(spec + "\n", encoding="utf-8")
        print(f"OpenAPI 已写入 {args.output}")


def cmd_serve(args) -> None:
    """Serve the API under gunicorn (sync workers: measured faster than gthread with keep-alive here)."""
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"{args.host}:{args.port}",
        "--workers",
        str(args.workers),
        "--worker-class",
        "sync",
        "--max-requests",
        "20000",
        "--max-requests-jitter",
        "2000",
        "--access-logfile",
        "-" if args.access_log else "/dev/null",
        "backend.wsgi:app",
    ]
    os.execv(sys.executable, argv)


def cmd_worker(args) -> None:
    """Run an RQ worker with its scheduler on the high, default and low queues."""
    from workers.main import QUEUES, run

    redis_url = os.environ.get("REDIS_URL") or _app().config["REDIS_URL"]
    run(redis_url, tuple(args.queues or QUEUES), burst=args.burst)


def cmd_fake_wechat(args) -> None:
    """Run the fake WeChat server in the foreground."""
    from miniprogram_mock import fake_wechat

    fake_wechat.main(["--host", args.host, "--port", str(args.port)])


def cmd_rotate_keys(args) -> None:
    """Re-encrypt every sensitive value under the first key of SANDAN_ENCRYPTION_KEYS."""
    from backend.privacy.crypto import KeyConfigError
    from backend.privacy.service import UnreadableValue, rotate_all_keys

    app = _app()
    with app.app_context():
        try:
            count = rotate_all_keys()
        except KeyConfigError as exc:
            # The value no key opens, in Chinese; any other key error (none configured) said in Chinese too.
            found = str(exc) if isinstance(exc, UnreadableValue) else "加密密钥未配置或无法使用"
            print(
                f"无法轮换密钥，未做任何修改：{found}。\n"
                "SANDAN_ENCRYPTION_KEYS 应为“新密钥,旧密钥”：新密钥在前用于加密，旧密钥须保留在后面，"
                "直到本命令完成后才能删去。",
                file=sys.stderr,
            )
            sys.exit(1)
    print(f"已用新密钥重新加密 {count} 个敏感字段")


def cmd_demo(args) -> None:
    """Everything on the embedded default: SQLite, embedded Redis, fake WeChat, a worker, demo data."""
    from werkzeug.serving import make_server

    from backend.embedded_redis import ensure_redis_url
    from miniprogram_mock.fake_wechat import FakeWeChatServer

    instance = Path(os.environ.setdefault("SANDAN_INSTANCE_DIR", str(PROJECT_ROOT / "instance")))
    instance.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{instance / 'demo.db'}")
    redis_server = ensure_redis_url()
    fake = None
    if not os.environ.get("WECHAT_API_BASE_URL"):
        fake = FakeWeChatServer(port=args.wechat_port).start()
        os.environ["WECHAT_API_BASE_URL"] = fake.url

    cmd_migrate(args)
    cmd_seed_demo(args)
    worker = subprocess.Popen([sys.executable, "-m", "backend.cli", "worker"], env=os.environ.copy())

    from backend import create_app

    app = create_app({"DEMO_MODE": True})  # serves the clickable mini-program mock at /demo/
    server = make_server(args.host, args.port, app, threaded=True)
    stop = threading.Event()

    def shutdown(signum, frame):
        if not stop.is_set():
            stop.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    base = f"http://{args.host}:{server.server_port}"
    print(f"三单演示已启动: {base}", flush=True)
    print(f"API 文档: {base}/api/docs", flush=True)
    print(f"模拟微信服务: {os.environ['WECHAT_API_BASE_URL']}", flush=True)
    print(f"小程序演示（可点击）: {base}/demo/", flush=True)
    try:
        server.serve_forever()
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()
        if fake is not None:
            fake.stop()
        if redis_server is not None:
            redis_server.stop()
        print("三单演示已停止", flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sandan", description="三单 backend")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help=cmd_demo.__doc__)
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=int(os.environ.get("SANDAN_PORT", "5000")))
    demo.add_argument("--wechat-port", type=int, default=0)
    demo.set_defaults(func=cmd_demo)

    serve = sub.add_parser("serve", help=cmd_serve.__doc__)
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=int(os.environ.get("SANDAN_PORT", "5000")))
    serve.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "2")))
    serve.add_argument("--access-log", action="store_true")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help=cmd_worker.__doc__)
    worker.add_argument("queues", nargs="*")
    worker.add_argument("--burst", action="store_true")
    worker.set_defaults(func=cmd_worker)

    sub.add_parser("migrate", help=cmd_migrate.__doc__).set_defaults(func=cmd_migrate)
    sub.add_parser("seed-demo", help=cmd_seed_demo.__doc__).set_defaults(func=cmd_seed_demo)
    sub.add_parser("rotate-keys", help=cmd_rotate_keys.__doc__).set_defaults(func=cmd_rotate_keys)

    openapi = sub.add_parser("openapi", help=cmd_openapi.__doc__)
    openapi.add_argument("output", nargs="?", default="openapi.json")
    openapi.set_defaults(func=cmd_openapi)

    fake = sub.add_parser("fake-wechat", help=cmd_fake_wechat.__doc__)
    fake.add_argument("--host", default="127.0.0.1")
    fake.add_argument("--port", type=int, default=8081)
    fake.set_defaults(func=cmd_fake_wechat)
    return parser


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
