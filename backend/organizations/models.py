from sqlalchemy import Column, Float, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.community.models import Community
from backend.db import PublicIdMixin, TimestampMixin, db

organization_communities = Table(
    "organization_communities",
    db.metadata,
    Column("organization_id", ForeignKey("organizations.id"), primary_key=True),
    Column("community_id", ForeignKey("communities.id"), primary_key=True),
    # Recommendations read a community's organizations from this index alone (an index-only scan).
    Index("ix_organization_communities_community_organization", "community_id", "organization_id"),
)

# Which organizations serve a category in a community: one entry per (community, category, organization),
# the product of the two tables above, so that recommendations find an order's candidates in one range of
# one index. Derived data kept by triggers on those two tables (migration 0013); nothing writes it.
organization_reach = Table(
    "organization_reach",
    db.metadata,
    Column("community_id", Integer, primary_key=True, autoincrement=False),
    Column("category_code", String(64), primary_key=True),
    Column("organization_id", Integer, primary_key=True, autoincrement=False),
)


class Organization(PublicIdMixin, TimestampMixin, db.Model):
    """A social organization or volunteer team that takes dispatched work."""

    __tablename__ = "organizations"
    __table_args__ = (UniqueConstraint("street_id", "name"),)
    PUBLIC_ID_PREFIX = "og"

    street_id: Mapped[int] = mapped_column(ForeignKey("streets.id"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(Text, default="")
    # How many orders it can carry at once; dispatch recommendations weigh open load against it.
    capacity: Mapped[int] = mapped_column(Integer, default=10)
    # Multiplies its recommendation score; each bad rating lowers it a step, down to a floor.
    dispatch_weight: Mapped[float] = mapped_column(Float, default=1.0)
    communities: Mapped[list[Community]] = relationship(secondary=organization_communities)
    categories: Mapped[list["OrganizationCategory"]] = relationship(
        cascade="all, delete-orphan", order_by="OrganizationCategory.category_code"
    )

    @property
    def category_codes(self) -> list[str]:
        return [c.category_code for c in self.categories]


class OrganizationCategory(db.Model):
    """A service category (by catalog code) the organization serves."""

    __tablename__ = "organization_categories"
    # Recommendations read a category's organizations from this index alone (an index-only scan).
    __table_args__ = (
        Index("ix_organization_categories_category_organization", "category_code", "organization_id"),
    )

    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), primary_key=True)
    category_code: Mapped[str] = mapped_column(String(64), primary_key=True)


class Volunteer(PublicIdMixin, TimestampMixin, db.Model):
    """A person who does work for an organization; the login is the user, this is the roster entry."""

    __tablename__ = "volunteers"
    __table_args__ = (UniqueConstraint("organization_id", "user_id"),)
    PUBLIC_ID_PREFIX = "vl"

    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    display_name: Mapped[str] = mapped_column(String(64))
    skills: Mapped[str] = mapped_column(Text, default="")
    organization: Mapped[Organization] = relationship()
