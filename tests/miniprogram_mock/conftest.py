"""Fixtures for testing the fake WeChat server on its own: a server per test, and wechatpy pointed at it."""

import pytest
from wechatpy import WeChatClient

from miniprogram_mock.fake_wechat import FakeWeChatServer, FakeWeChatState

APPID = "wx-test-app"
SECRET = "test-app-secret"


class Client(WeChatClient):
    """The backend's way of pointing wechatpy at another host (a copy of backend.wechat's subclass)."""

    def __init__(self, appid, secret, base_url):
        self.base_url = base_url
        self.API_BASE_URL = base_url + "cgi-bin/"
        super().__init__(appid, secret)
        self.wxa.API_BASE_URL = base_url

    def fetch_access_token(self):
        return self._fetch_access_token(
            url=self.base_url + "cgi-bin/token",
            params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
        )


@pytest.fixture
def wechat():
    """A fake WeChat server of its own for each test, on a free port."""
    with FakeWeChatServer(FakeWeChatState(appid=APPID, secret=SECRET)) as server:
        yield server


@pytest.fixture
def state(wechat) -> FakeWeChatState:
    return wechat.state


@pytest.fixture
def make_client(wechat):
    """Build wechatpy's real client, configured like the backend's, talking to the fake."""

    def make(appid: str = APPID, secret: str = SECRET) -> Client:
        return Client(appid, secret, wechat.url)

    return make


@pytest.fixture
def wx(make_client) -> Client:
    return make_client()
