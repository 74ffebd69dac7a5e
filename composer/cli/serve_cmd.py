"""`compose serve`: the public web service (unsubscribe links, web archive, feed)."""

from __future__ import annotations

from pathlib import Path

import click

from composer.cli import App
from composer.errors import UsageError


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--build-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of built issues for the archive (default: <project>/build).",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
@click.pass_obj
def serve(app: App, host: str, port: int, build_dir: Path | None, log_level: str) -> None:
    """Serve `…/unsubscribe/<token>` (GET asks, POST one-click unsubscribes), the web archive
    at /<slug>/, its index at /, the Atom feed at /feed.xml, SendGrid's Event Webhook at
    /webhooks/sendgrid (key in SENDGRID_WEBHOOK_PUBLIC_KEY), tracked links at /c/<token>,
    and /healthz.

    Run it behind a reverse proxy that terminates TLS; see docs/serve.md.
    """
    import uvicorn

    from composer.web.app import create_app, log_config

    project = app.project()
    web_app = create_app(project, build_dir or project.root / "build")
    try:
        uvicorn.run(
            web_app,
            host=host,
            port=port,
            log_config=log_config(log_level.upper()),
            access_log=False,
            server_header=False,
        )
    except SystemExit as exc:
        # uvicorn exits 1 or 3 when it cannot start; 3 means something else to `compose`.
        if exc.code not in (0, None):
            raise UsageError(
                f"could not serve on {host}:{port} (see the error above; is the port in use?)"
            ) from None
        raise
