"""Every endpoint declares who may call it; a request hook enforces the declaration before the view runs.

A declaration is metadata on the view function (``@access.roles(...)``), so the route table itself can be
walked to prove nothing is left open by accident: the app refuses to start with an undeclared endpoint.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from flask import Flask, current_app, g, request
from flask.ctx import _AppCtxGlobals

from backend.auth.roles import Role
from backend.errors import ApiError, Forbidden

# A scope node is ("street" | "community" | "grid" | "organization", integer id).
ScopeNode = tuple[str, int]
# Given the URL's view arguments, return the target's scope node and its ancestors (or raise NotFound).
ScopeResolver = Callable[[dict], list[ScopeNode]]
# Return the Principal behind the request, or raise Unauthorized (default: the Bearer header).
Authenticator = Callable[[], object]
# Return the error for a caller who holds none of an endpoint's roles, saying how to come by one.
Refusal = Callable[[], ApiError]


@dataclass(frozen=True)
class AccessRule:
    public: bool = False
    roles: frozenset[str] = field(default_factory=frozenset)
    scope: ScopeResolver | None = None
    # Only for pages a browser opens (it cannot send a Bearer header): the queue dashboard's cookie.
    authenticate: Authenticator | None = None
    # For a caller holding none of the roles in any scope, instead of the generic 403: a newcomer placing
    # an order is told to register where they live, which makes them a resident.
    refusal: Refusal | None = None
    # For a rule open to any signed-in user whose service lets through only those standing in some relation
    # to the target, whatever roles they hold now (the order's own resident): who, as the docs say it.
    standing: str = ""

    def describe(self) -> str:
        if self.public:
            return "public"
        if not self.roles:
            return "any signed-in user" + (f"; {self.standing}" if self.standing else "")
        where = " in the target's scope" if self.scope else ""
        others = "" if self.refusal is None else f"; holding none of them: 403 {self.refusal().code}"
        return "roles: " + ", ".join(sorted(self.roles)) + where + others


_ATTR = "_sandan_access"
_EXTRA_RULES: dict[str, AccessRule] = {}


def _mark(rule: AccessRule):
    def decorate(view):
        setattr(view, _ATTR, rule)
        return view

    return decorate


def public(view):
    """Anyone may call this endpoint, signed in or not."""
    return _mark(AccessRule(public=True))(view)


def signed_in(view):
    """Any signed-in user may call this endpoint; the service narrows what they see."""
    return _mark(AccessRule())(view)


def signed_in_as(standing: str):
    """Any signed-in user may call this endpoint, whatever roles they hold now: the service lets through only
    those standing to the target as ``standing`` says ("own orders only": a resident who moved away still
    owns what they ordered), 404 or 409 to the rest."""
    if not standing:
        raise ValueError("access.signed_in_as needs to say who stands to the target")
    return _mark(AccessRule(standing=standing))


def roles(*names: Role | str, scope: ScopeResolver | None = None, refusal: Refusal | None = None):
    """Only holders of one of these roles (within the target's scope, when a resolver is given); a caller
    holding none of them anywhere gets ``refusal()`` when given."""
    if not names:
        raise ValueError("access.roles needs at least one role")
    return _mark(AccessRule(roles=frozenset(str(n) for n in names), scope=scope, refusal=refusal))


def declare_endpoint(endpoint: str, rule: AccessRule) -> None:
    """Declare access for an endpoint whose view we do not write (OpenAPI docs, dashboards)."""
    _EXTRA_RULES[endpoint] = rule


def rule_for(app: Flask, endpoint: str) -> AccessRule | None:
    view = app.view_functions.get(endpoint)
    return getattr(view, _ATTR, None) or _EXTRA_RULES.get(endpoint)


def undeclared_endpoints(app: Flask) -> list[str]:
    return sorted(ep for ep in app.view_functions if rule_for(app, ep) is None)


def holds(principal, role_names: Iterable[str], target: list[ScopeNode] | None) -> bool:
    """Whether the principal holds one of the roles, in a scope containing the target if one is given."""
    wanted = set(role_names)
    nodes = set(target) if target is not None else None
    for m in principal.memberships:
        if m.role in wanted and (nodes is None or (m.scope_type, m.scope_id) in nodes):
            return True
    return False


def enforce() -> None:
    """before_request hook: authenticate and authorize according to the endpoint's declaration."""
    from backend.auth.service import authenticate_bearer

    # Every request runs this: flask's proxies are looked through once.
    state, current = g._get_current_object(), request._get_current_object()
    # An app context can outlive a request (tests push one around several): nobody is signed in yet.
    state.__dict__.pop("principal", None)
    state.__dict__.pop("_user", None)
    endpoint = current.endpoint
    if endpoint is None:  # routing failed; the 404/405 handler answers
        return
    rule = rule_for(current_app._get_current_object(), endpoint)
    if rule is None:  # unreachable after start-up's check; refuse rather than leave open
        raise Forbidden("该接口未声明访问权限", code="access_undeclared")
    if rule.public:
        return
    if rule.authenticate is not None:
        principal = rule.authenticate()
    else:
        principal = authenticate_bearer(current.headers.get("Authorization"))
    state.principal = principal
    if not rule.roles:
        return
    target = rule.scope(current.view_args or {}) if rule.scope else None
    if holds(principal, rule.roles, target):
        return
    if rule.refusal is not None and not holds(principal, rule.roles, None):
        raise rule.refusal()
    raise Forbidden("当前角色或管辖范围无权进行此操作", details={"required_roles": sorted(rule.roles)})


class RequestGlobals(_AppCtxGlobals):
    """``flask.g``, where ``g.user`` is the signed-in user's row, read on first use: ``g.principal`` (ids
    and roles, from the process's cache) is all that most requests need."""

    @property
    def user(self):
        user = self.__dict__.get("_user")
        if user is None:
            from backend.auth.service import load_user

            principal = self.__dict__.get("principal")
            if principal is None:
                raise AttributeError("user: nobody is signed in")
            user = self.__dict__["_user"] = load_user(principal.id)
        return user

    @user.setter
    def user(self, value) -> None:
        self.__dict__["_user"] = value


def init_app(app: Flask) -> None:
    app.app_ctx_globals_class = RequestGlobals
    app.before_request(enforce)
