from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from aibroker.models.base import Base, Timestamped


class ModelOverride(Timestamped, Base):
    """A database override of a packaged catalog entry (or a new model). NULL keeps the packaged value."""

    __tablename__ = "model_overrides"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)  # "provider/model"
    input_micros_per_m: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    output_micros_per_m: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    cached_input_micros_per_m: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    context_length: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_output_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    capabilities: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
