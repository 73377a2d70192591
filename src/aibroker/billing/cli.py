"""`aibroker wallet ...` and `aibroker verify-ledger`."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import typer

from aibroker.cli_support import with_session
from aibroker.kit.money import format_micros

wallet_app = typer.Typer(help="Prepaid wallets.", no_args_is_help=True)


def _org_id(ref: str) -> str:
    from aibroker.tenancy.service import find_organization

    async def find(session: Any) -> str:
        return (await find_organization(session, ref)).id

    return with_session(find)


def _wallet_view(org_id: str) -> dict:
    from sqlalchemy import select

    from aibroker.db import make_sync_engine
    from aibroker.models import Wallet

    engine = make_sync_engine(pooled=False)
    try:
        with engine.connect() as conn:
            wallet = conn.execute(select(Wallet).where(Wallet.organization_id == org_id)).first()
    finally:
        engine.dispose()
    if wallet is None:
        typer.echo("error: this organization has no wallet", err=True)
        raise typer.Exit(1)
    available = wallet.balance_micros - wallet.held_micros
    return {
        "organization_id": org_id,
        "wallet_id": wallet.id,
        "currency": wallet.currency,
        "balance_micros": wallet.balance_micros,
        "held_micros": wallet.held_micros,
        "available_micros": available,
        "balance": format_micros(wallet.balance_micros),
        "held": format_micros(wallet.held_micros),
        "available": format_micros(available),
        "low_balance_threshold_micros": wallet.low_balance_threshold_micros,
    }


@wallet_app.command("topup")
def topup(
    org: str = typer.Argument(..., help="Organization id, slug or name."),
    amount: Decimal = typer.Argument(..., help="Amount in the wallet's currency (USD), e.g. 25 or 12.50."),
    idempotency_key: str = typer.Option(None, "--idempotency-key", help="Repeat-safe: the same key moves money once."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Recharge a wallet through the ledger."""
    from aibroker.billing.batch import PostEntry
    from aibroker.billing.service import post_entry_sync
    from aibroker.db import make_sync_engine
    from aibroker.errors import BrokerError
    from aibroker.kit.money import to_micros

    org_id = _org_id(org)
    try:
        micros = to_micros(amount)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    engine = make_sync_engine(immediate=True, pooled=False)
    try:
        posted = post_entry_sync(engine, PostEntry(org_id, "recharge", micros, idempotency_key=idempotency_key, description="CLI top-up"))
    except BrokerError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    finally:
        engine.dispose()
    data = {"organization_id": org_id, "amount_micros": micros, "balance_micros": posted.balance_after, "duplicate": posted.duplicate}
    human = ("already applied (same idempotency key); " if posted.duplicate else "") + f"balance {format_micros(posted.balance_after)}"
    typer.echo(json.dumps(data, indent=2) if as_json else human)


@wallet_app.command("show")
def show(org: str = typer.Argument(..., help="Organization id, slug or name."), as_json: bool = typer.Option(False, "--json")) -> None:
    """Balance, held and available amounts (micro-units and decimal)."""
    data = _wallet_view(_org_id(org))
    human = f"balance {data['balance']} {data['currency']}  held {data['held']}  available {data['available']}"
    typer.echo(json.dumps(data, indent=2) if as_json else human)


holds_app = typer.Typer(help="Wallet holds (money reserved for requests in flight).", no_args_is_help=True)


def verify_ledger(
    as_json: bool = typer.Option(False, "--json", help="Machine-readable report."),
    full: bool = typer.Option(False, "--full", help="Re-verify everything from the start, not from the last checkpoint."),
) -> None:
    """Check every wallet: balance == sum(ledger), held == sum(open holds), the balance_after
    chain, and one debit per billed usage record (and the reverse). Exits 1 on any disagreement.
    Starts from the checkpoint the last clean run left (what it proved is not read again);
    --full starts from nothing and rebuilds the checkpoint."""
    from aibroker.billing.audit_checkpoint import verify_ledger as run
    from aibroker.db import make_sync_engine

    engine = make_sync_engine(pooled=False)
    try:
        report = run(engine, full=full)
    finally:
        engine.dispose()
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    else:
        for problem in report.problems:
            typer.echo(f"FAIL {problem.check:<20} {problem.organization_id or '-':<34} {problem.detail}")
        for check, more in report.truncated.items():
            typer.echo(f"FAIL {check:<20} ... and {more} more")
        verdict = "ok" if report.ok else f"{len(report.problems)} problem(s)"
        typer.echo(f"{verdict}: {report.wallets} wallet(s), {report.ledger_entries} ledger entries checked")
    if not report.ok:
        raise typer.Exit(1)


@holds_app.command("sweep")
def sweep_holds(
    now: str = typer.Option(None, "--now", help="Pretend it is this ISO time (release holds expired by then)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Release expired holds (those of requests whose process died). Servers also do it periodically."""
    import datetime as dt

    from aibroker.billing.batch import sweep_expired_holds
    from aibroker.db import make_sync_engine

    moment = None
    if now:
        try:
            moment = dt.datetime.fromisoformat(now)
        except ValueError as exc:
            typer.echo(f"error: --now must be an ISO datetime, e.g. 2030-01-01T00:00:00Z ({exc})", err=True)
            raise typer.Exit(1) from exc
        moment = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    engine = make_sync_engine(immediate=True, pooled=False)
    try:
        with engine.begin() as conn:
            released = sweep_expired_holds(conn, moment)
    finally:
        engine.dispose()
    data = {"released_micros": released, "released": format_micros(released)}
    typer.echo(json.dumps(data) if as_json else f"released {format_micros(released)} of expired holds")


def register(app: typer.Typer) -> None:
    app.add_typer(wallet_app, name="wallet")
    app.add_typer(holds_app, name="holds")
    app.command("verify-ledger")(verify_ledger)
