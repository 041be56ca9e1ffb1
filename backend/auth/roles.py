"""Roles and the scopes they are held in (street ⊃ community ⊃ grid; organizations sit in a street)."""

from enum import StrEnum


class Role(StrEnum):
    RESIDENT = "resident"
    GRID_WORKER = "grid_worker"
    SECRETARY = "secretary"
    ORG_ADMIN = "org_admin"
    VOLUNTEER = "volunteer"
    PROXY_AGENT = "proxy_agent"
    STREET_ADMIN = "street_admin"


class ScopeType(StrEnum):
    STREET = "street"
    COMMUNITY = "community"
    GRID = "grid"
    ORGANIZATION = "organization"


ROLE_LABELS = {
    Role.RESIDENT: "居民",
    Role.GRID_WORKER: "网格员",
    Role.SECRETARY: "社区书记",
    Role.ORG_ADMIN: "社会组织管理员",
    Role.VOLUNTEER: "志愿者",
    Role.PROXY_AGENT: "代办员",
    Role.STREET_ADMIN: "街道管理员",
}

# Where each role may be held; a membership elsewhere is refused at creation.
ROLE_SCOPES = {
    Role.RESIDENT: {ScopeType.GRID, ScopeType.COMMUNITY},
    Role.GRID_WORKER: {ScopeType.GRID},
    Role.SECRETARY: {ScopeType.COMMUNITY},
    Role.ORG_ADMIN: {ScopeType.ORGANIZATION},
    Role.VOLUNTEER: {ScopeType.ORGANIZATION},
    Role.PROXY_AGENT: {ScopeType.COMMUNITY, ScopeType.STREET},
    Role.STREET_ADMIN: {ScopeType.STREET},
}
