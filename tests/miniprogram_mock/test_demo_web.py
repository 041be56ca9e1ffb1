"""The clickable mini-program mock is served in demo mode only, and the fake WeChat lets its page ask for a
wx.login code from another origin."""

import pytest
import requests

from backend import create_app
from backend.auth import access


def _demo_app(app, **overrides):
    keys = (
        "SQLALCHEMY_DATABASE_URI",
        "SECRET_KEY",
        "ENCRYPTION_KEYS",
        "HMAC_KEY",
        "INSTANCE_DIR",
        "REDIS_URL",
    )
    return create_app(
        {
            **{k: app.config[k] for k in keys},
            "WECHAT_API_BASE_URL": "http://127.0.0.1:8123/",
            "DEMO_MODE": True,
            **overrides,
        }
    )


def test_not_served_outside_demo_mode(app, client):
    assert not app.config.get("DEMO_MODE")
    assert not [rule.rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/demo")]
    for path in ("/demo/", "/demo/config.json", "/demo/app.js", "/"):
        assert client.get(path).status_code == 404, path


def test_served_in_demo_mode_publicly(app):
    demo = _demo_app(app)
    web = demo.test_client()
    page = web.get("/demo/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert '<script type="module" src="app.js">' in page.get_data(as_text=True)
    assert web.get("/demo/config.json").get_json() == {
        "wechat_base_url": "http://127.0.0.1:8123/",
        "api_base_url": "/api/v1",
    }
    script = web.get("/demo/app.js")
    assert script.status_code == 200 and "javascript" in script.mimetype
    assert web.get("/").headers["Location"].endswith("/demo/")
    assert web.get("/demo/../backend/config.py").status_code == 404
    assert web.get("/demo/no-such-file.js").status_code == 404
    for endpoint in ("demo_web.index", "demo_web.config", "demo_web.asset", "demo_root"):
        assert access.rule_for(demo, endpoint).public


def test_the_page_uses_only_the_public_api_and_the_fake_wechat(app):
    """No back door: the scripts call /api/v1 (with the bearer token) and the fake's login-code only."""
    from backend.demo_web import WEB_DIR

    sources = "\n".join(p.read_text(encoding="utf-8") for p in sorted(WEB_DIR.glob("*.js")))
    assert "/_mock/login-code" in sources
    assert "Bearer " in sources
    for forbidden in (
        "/_mock/reset",
        "/_mock/faults",
        "/admin/",
        ".innerHTML",
        "insertAdjacentHTML",
        "http://",
        "https://",
    ):
        assert forbidden not in sources, forbidden


@pytest.mark.parametrize("path", ["/_mock/login-code", "/_mock/phone-code"])
def test_fake_wechat_answers_the_demo_page_cross_origin(wechat, path):
    preflight = requests.options(
        wechat.url.rstrip("/") + path,
        headers={
            "Origin": "http://127.0.0.1:5000",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
        timeout=5,
    )
    assert preflight.ok
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "Content-Type" in preflight.headers["Access-Control-Allow-Headers"]
    answer = requests.post(
        wechat.url + "_mock/login-code",
        json={"openid": "demo-resident-1"},
        headers={"Origin": "http://127.0.0.1:5000"},
        timeout=5,
    )
    assert (
        answer.headers["Access-Control-Allow-Origin"] == "*" and answer.json()["openid"] == "demo-resident-1"
    )


def test_fake_wechat_api_itself_stays_same_origin(wechat):
    response = requests.get(
        wechat.url + "cgi-bin/token", headers={"Origin": "http://evil.example"}, timeout=5
    )
    assert "Access-Control-Allow-Origin" not in response.headers
