"""The audited totals `aibroker verify-ledger` starts from: one checkpoint row and, per
wallet, the ledger sum and last balance through the checkpoint's entry id. A later run
verifies only what came after; `--full` re-verifies everything and rewrites them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from aibroker.models.base import Base


class LedgerCheckpoint(Base):
    __tablename__ = "ledger_checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1: one checkpoint in force
    # Every ledger entry with id <= this was verified and is summed in ledger_checkpoint_wallets.
    through_entry_id: Mapped[int] = mapped_column(BigInteger)
    # Every usage record with id < this (ids sort by creation time) was verified.
    usage_through_id: Mapped[str] = mapped_column(String(40))
    entries: Mapped[int] = mapped_column(BigInteger)
    verified_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class LedgerCheckpointWallet(Base):
    __tablename__ = "ledger_checkpoint_wallets"

    wallet_id: Mapped[str] = mapped_column(ForeignKey("wallets.id", ondelete="CASCADE"), primary_key=True)
    sum_micros: Mapped[int] = mapped_column(BigInteger)
    last_entry_id: Mapped[int] = mapped_column(BigInteger)
    last_balance_after_micros: Mapped[int] = mapped_column(BigInteger)
