"""The clickable mini-program mock (miniprogram_mock/web/), served at /demo/ only when DEMO_MODE is on.

`sandan demo` turns it on; nothing else does, so a deployment never serves it. The page signs in as the
mini-program does (a wx.login code from the fake WeChat server, then POST /api/v1/auth/login) and then
calls the public API with its bearer token: this blueprint serves files and the fake server's address,
nothing more. The files are read from disk; backend does not import miniprogram_mock.
"""

from flask import Blueprint, Flask, current_app, redirect, send_from_directory

from backend.auth import access
from backend.config import PROJECT_ROOT

WEB_DIR = PROJECT_ROOT / "miniprogram_mock" / "web"

blp = Blueprint("demo_web", __name__, url_prefix="/demo")


@blp.get("/")
@access.public
def index():
    return send_from_directory(WEB_DIR, "index.html", max_age=0)


@blp.get("/config.json")
@access.public
def config():
    """Where the page finds the fake WeChat server (what wx.login talks to on a phone)."""
    return {"wechat_base_url": current_app.config["WECHAT_API_BASE_URL"], "api_base_url": "/api/v1"}


@blp.get("/<path:filename>")
@access.public
def asset(filename):
    return send_from_directory(WEB_DIR, filename, max_age=0)


def init_app(app: Flask) -> None:
    """Register the mock when the app runs as the demo; a no-op otherwise."""
    if not app.config.get("DEMO_MODE"):
        return
    app.register_blueprint(blp)

    @app.get("/", endpoint="demo_root")
    @access.public
    def root():
        return redirect("/demo/")
