"""A scripted phone doing over HTTP what the mini-program does: wx.login, sign-in, refresh, API calls."""

import uuid
from typing import Any

import requests

TIMEOUT = 10


class PhoneError(Exception):
    """The backend or the fake WeChat server answered with an unexpected HTTP status."""

    def __init__(self, status: int, body: Any):
        super().__init__(f"HTTP {status}: {body!r}")
        self.status = status
        self.body = body

    @property
    def code(self) -> str | None:
        """The API's error code ("token_expired", ...), if the body has one."""
        return self.body.get("code") if isinstance(self.body, dict) else None


def _body(response: requests.Response) -> Any:
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text


class Phone:
    """One WeChat user on one phone, signed in to the Sandan API."""

    def __init__(
        self,
        api_base_url: str,
        wechat_base_url: str,
        openid: str | None = None,
        unionid: str | None = None,
    ):
        base = api_base_url.rstrip("/")
        self.api_url = base if base.endswith("/api/v1") else base + "/api/v1"
        self.wechat_url = wechat_base_url.rstrip("/")
        self.openid = openid
        self.unionid = unionid
        self.access_token: str | None = None
        self.refresh_token: str | None = None
        self.user: dict | None = None
        self.session = requests.Session()

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> "Phone":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- the WeChat side ---------------------------------------------------------------------------

    def _mock(self, path: str, payload: dict) -> dict:
        response = self.session.post(self.wechat_url + path, json=payload, timeout=TIMEOUT)
        if not response.ok:
            raise PhoneError(response.status_code, _body(response))
        return response.json()

    def wx_login_code(self) -> str:
        """What wx.login() gives the mini-program: a fresh one-time code for this phone's WeChat user."""
        payload = {"openid": self.openid} if self.openid else {}
        if self.unionid:
            payload["unionid"] = self.unionid
        result = self._mock("/_mock/login-code", payload)
        self.openid = result["openid"]
        return result["code"]

    # --- the Sandan API ----------------------------------------------------------------------------

    def _store_tokens(self, result: dict) -> None:
        self.access_token = result["access_token"]
        self.refresh_token = result.get("refresh_token", self.refresh_token)
        self.user = result.get("user", self.user)

    def _post_unauthenticated(self, path: str, payload: dict) -> dict:
        response = self.session.post(self.api_url + path, json=payload, timeout=TIMEOUT)
        if not response.ok:
            raise PhoneError(response.status_code, _body(response))
        return response.json()

    def login(self, nickname: str | None = None) -> dict:
        """Sign in with a new wx.login code; keeps and returns the token pair and user."""
        payload = {"code": self.wx_login_code()}
        if nickname is not None:
            payload["nickname"] = nickname
        result = self._post_unauthenticated("/auth/login", payload)
        self._store_tokens(result)
        return result

    def refresh(self) -> dict:
        """Trade the refresh token for a new token pair."""
        if not self.refresh_token:
            raise RuntimeError("not signed in: call login() first")
        result = self._post_unauthenticated("/auth/refresh", {"refresh_token": self.refresh_token})
        self._store_tokens(result)
        return result

    def _send(self, method: str, path: str, json, params, headers) -> requests.Response:
        merged = {"Authorization": f"Bearer {self.access_token}"} if self.access_token else {}
        merged.update(headers or {})
        if not path.startswith("/"):
            path = "/" + path
        return self.session.request(
            method.upper(), self.api_url + path, json=json, params=params, headers=merged, timeout=TIMEOUT
        )

    def call(
        self,
        method: str,
        path: str,
        json: Any = None,
        params: dict | None = None,
        headers: dict | None = None,
        expect: int | None = None,
    ) -> requests.Response:
        """Call /api/v1<path> signed in, refreshing once on token_expired like the mini-program does."""
        response = self._send(method, path, json, params, headers)
        if response.status_code == 401 and self.refresh_token:
            body = _body(response)
            if isinstance(body, dict) and body.get("code") == "token_expired":
                self.refresh()
                response = self._send(method, path, json, params, headers)
        if expect is not None and response.status_code != expect:
            raise PhoneError(response.status_code, _body(response))
        return response

    def request(self, method: str, path: str, **kwargs) -> Any:
        """Like call(), but return the parsed body; a non-2xx raises PhoneError unless expect is given."""
        response = self.call(method, path, **kwargs)
        if kwargs.get("expect") is None and not response.ok:
            raise PhoneError(response.status_code, _body(response))
        return _body(response)

    def get(self, path: str, **kwargs) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> Any:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs) -> Any:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs) -> Any:
        return self.request("DELETE", path, **kwargs)

    def consent(self, kind: str, text_version: str = "2026-11") -> Any:
        """Agree to the privacy notice for one kind of personal data."""
        return self.post("/me/consents", json={"kind": kind, "text_version": text_version})

    def bind_phone(self, phone: str) -> Any:
        """Tap "allow" on getPhoneNumber for this number and send its code to the backend."""
        code = self._mock("/_mock/phone-code", {"phone": phone})["code"]
        user = self.post("/me/phone", json={"code": code})
        if isinstance(user, dict):
            self.user = user
        return user

    # --- WeChat subscribe messages -----------------------------------------------------------------

    def subscribe(self, events: list[str] | None = None, answer: str = "accept") -> list[dict]:
        """Tap "allow" on wx.requestSubscribeMessage for the templates of these events (all when None):
        send its result ({template_id: accept|reject|ban|filter}); returns the grants left."""
        templates = self.get("/notifications/templates")["items"]
        chosen = [t for t in templates if events is None or t["event"] in events]
        results = {t["template_id"]: answer for t in chosen if t.get("template_id")}
        # One key per answer, as the mini-program keeps it across its retries of the same answer.
        return self._create("/notifications/subscriptions", {"results": results}, None)["items"]

    # --- one line per API call the tests make, by role ---------------------------------------------

    def _create(self, path: str, payload: dict, key: str | None) -> dict:
        return self.post(path, json=payload, headers={"Idempotency-Key": key or uuid.uuid4().hex})

    def place_order(self, category: str, description: str, *, key: str | None = None, **fields) -> dict:
        """Resident: place an order (answers, address, contact_name, contact_phone, photo_ids ...)."""
        return self._create("/orders", {"category": category, "description": description, **fields}, key)

    def order_action(self, order_id: str, action: str, **body) -> dict:
        """Any role: POST /orders/<id>/<action> (accept, dispatch, take, assign, resolve, confirm ...)."""
        return self.post(f"/orders/{order_id}/{action.replace('_', '-')}", json=body)

    def book(self, slot_id: str, date: str, errand_type: str, *, key: str | None = None, **fields) -> dict:
        """Resident (or secretary for a resident): book a service point's slot on a date."""
        payload = {"slot_id": slot_id, "date": date, "errand_type": errand_type, **fields}
        return self._create("/appointments", payload, key)

    def first_free_slot(self, point_id: str) -> dict:
        """The earliest occurrence with room at a service point (from its availability)."""
        items = self.get(f"/service-points/{point_id}/availability")["items"]
        return next(o for o in items if o["available"])

    def book_errand(self, errand_type: str, *, key: str | None = None, **fields) -> dict:
        """Resident: book an errand (appointment_id, description, items, sensitive ...)."""
        return self._create("/errands", {"type": errand_type, **fields}, key)

    def errand_action(self, errand_id: str, action: str, **body) -> dict:
        """Any role: POST /errands/<id>/<action> (accept, collect, lodge, record_result, complete ...)."""
        return self.post(f"/errands/{errand_id}/{action.replace('_', '-')}", json=body)
