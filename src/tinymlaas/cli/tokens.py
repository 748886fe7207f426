"""``tinymlaas tokens create|list|revoke``: REST API tokens, made on the server host, which needs no token.

Making and revoking tokens here is recorded in the audit trail as done by ``cli``.
"""

from __future__ import annotations

import typer
from rich.table import Table

from tinymlaas.cli._shared import console, err_console, get_context, print_json
from tinymlaas.services.audit import CLI_ACTOR, NO_ROLE, record
from tinymlaas.services.auth import Role, create_token, list_tokens, revoke_token

app = typer.Typer(help="API tokens: who may call the REST API, and with which role.", no_args_is_help=True)


def _when(iso: str | None, missing: str) -> str:
    return (iso or missing)[:19].replace("T", " ")


@app.command("create")
def create(
    ctx: typer.Context,
    role: Role = typer.Option(..., "--role", help="What the token may do."),
    name: str = typer.Option("", "--name", help="A label to tell tokens apart (default: the role)."),
    expires_in: str | None = typer.Option(
        None, "--expires-in", help="Refuse the token after this long: 30d, 12h, 1w (default: never)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the token and its secret as JSON."),
) -> None:
    """Make a token and print its secret; it is shown this once and cannot be read back."""
    context = get_context(ctx)
    token, secret = create_token(context, role, name, expires_in=expires_in)
    record(
        context,
        actor=CLI_ACTOR,
        role=NO_ROLE,
        action="cli:tokens create",
        target=token["id"],
        detail={
            "name": token["name"],
            "role": token["role"],
            "expires_at": token["expires_at"],
            "outcome": "ok",
        },
    )
    if as_json:
        print_json({**token, "secret": secret})
        return
    typer.echo(secret)
    expiry = f", expires {_when(token['expires_at'], '')} UTC" if token["expires_at"] else ""
    label = f"{token['name']}, role {token['role']}{expiry}"
    err_console.print(
        f"token {token['id']} ({label}): the secret above is shown once",
        style="dim",
        highlight=False,
    )


@app.command("list")
def list_(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List tokens (never their secrets, which are not stored)."""
    tokens = list_tokens(get_context(ctx))
    if as_json:
        print_json(tokens)
        return
    table = Table(title="API tokens")
    for column in ("id", "name", "role", "created (UTC)", "last used (UTC)", "expires (UTC)", "revoked"):
        table.add_column(column, overflow="fold")
    for token in tokens:
        table.add_row(
            token["id"],
            token["name"],
            token["role"],
            _when(token["created_at"], "—"),
            _when(token["last_used_at"], "—"),
            _when(token["expires_at"], "never"),
            "yes" if token["revoked"] else "no",
        )
    console.print(table)


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    token_id: str = typer.Argument(..., help="The token's id, from 'tinymlaas tokens list'."),
    as_json: bool = typer.Option(False, "--json", help="Print the revoked token as JSON."),
) -> None:
    """Revoke a token: its secret is refused from now on, by the API and the dashboard."""
    context = get_context(ctx)
    token = revoke_token(context, token_id)
    record(
        context,
        actor=CLI_ACTOR,
        role=NO_ROLE,
        action="cli:tokens revoke",
        target=token["id"],
        detail={"name": token["name"], "role": token["role"], "outcome": "ok"},
    )
    if as_json:
        print_json(token)
        return
    console.print(f"token {token['id']} ({token['name']}, role {token['role']}) is revoked", highlight=False)
