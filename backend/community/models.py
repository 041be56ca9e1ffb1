from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.db import PublicIdMixin, TimestampMixin, db


class Street(PublicIdMixin, TimestampMixin, db.Model):
    """A sub-district (街道)."""

    __tablename__ = "streets"
    PUBLIC_ID_PREFIX = "st"

    name: Mapped[str] = mapped_column(String(64), unique=True)
    communities: Mapped[list["Community"]] = relationship(back_populates="street", order_by="Community.id")


class Community(PublicIdMixin, TimestampMixin, db.Model):
    """A community (社区) with its party organization."""

    __tablename__ = "communities"
    __table_args__ = (UniqueConstraint("street_id", "name"),)
    PUBLIC_ID_PREFIX = "cm"

    street_id: Mapped[int] = mapped_column(ForeignKey("streets.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    street: Mapped[Street] = relationship(back_populates="communities")
    grids: Mapped[list["Grid"]] = relationship(back_populates="community", order_by="Grid.id")


class Grid(PublicIdMixin, TimestampMixin, db.Model):
    """A grid (网格): the smallest unit a grid worker covers."""

    __tablename__ = "grids"
    __table_args__ = (UniqueConstraint("community_id", "name"),)
    PUBLIC_ID_PREFIX = "gd"

    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    community: Mapped[Community] = relationship(back_populates="grids")
