"""``tinymlaas tokens create|list|revoke``: REST API tokens, made on the server host, which needs no token."""

from __future__ import annotations

import typer
from rich.table import Table

from tinymlaas.cli._shared import console, err_console, get_context, print_json
from tinymlaas.services.auth import Role, create_token, list_tokens, revoke_token

app = typer.Typer(help="API tokens: who may call the REST API, and with which role.", no_args_is_help=True)


@app.command("create")
def create(
    ctx: typer.Context,
    role: Role = typer.Option(..., "--role", help="What the token may do."),
    name: str = typer.Option("", "--name", help="A label to tell tokens apart (default: the role)."),
    as_json: bool = typer.Option(False, "--json", help="Print the token and its secret as JSON."),
) -> None:
    """Make a token and print its secret; it is shown this once and cannot be read back."""
    token, secret = create_token(get_context(ctx), role, name)
    if as_json:
        print_json({**token, "secret": secret})
        return
    typer.echo(secret)
    err_console.print(
        f"token {token['id']} ({token['name']}, role {token['role']}): the secret above is shown once",
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
    for column in ("id", "name", "role", "created (UTC)", "last used (UTC)", "revoked"):
        table.add_column(column, overflow="fold")
    for token in tokens:
        table.add_row(
            token["id"],
            token["name"],
            token["role"],
            token["created_at"][:19].replace("T", " "),
            (token["last_used_at"] or "—")[:19].replace("T", " "),
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
    token = revoke_token(get_context(ctx), token_id)
    if as_json:
        print_json(token)
        return
    console.print(f"token {token['id']} ({token['name']}, role {token['role']}) is revoked", highlight=False)
