from sqlalchemy import JSON, Boolean, CheckConstraint, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from backend.db import PublicIdMixin, TimestampMixin, db
from backend.sla.rules import SERVICE_KIND_LABELS


class ServiceCategory(PublicIdMixin, TimestampMixin, db.Model):
    """A kind of help residents can order (水电维修, 助老陪护 ...), under one of the four service kinds.

    Its SLA policy is the sla domain's, looked up by ``code`` (a category override, else the kind's).
    """

    PUBLIC_ID_PREFIX = "sc"
    __tablename__ = "service_categories"
    __table_args__ = (
        CheckConstraint(
            "service_kind IN ('urgent', 'daily', 'targeted', 'professional')", name="service_kind"
        ),
    )

    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    service_kind: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text, default="")
    # [{code, label, datatype, required, choices: [{key, label}], hint}], validated by catalog.questions.
    questions: Mapped[list] = mapped_column(JSON, default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)

    @property
    def service_kind_label(self) -> str:
        return SERVICE_KIND_LABELS[self.service_kind]
