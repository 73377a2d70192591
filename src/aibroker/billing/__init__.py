"""Wallets, holds, ledger, margins: the broker's money."""
