"""`compose doctor`: check SPF, DKIM, DMARC and public URLs before the first send."""

from __future__ import annotations

import click

from composer.cli import App


@click.command()
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=5.0,
    show_default=True,
    help="Seconds to wait for each DNS answer.",
)
@click.pass_obj
def doctor(app: App, timeout: float) -> None:
    """Check what decides whether mail arrives: SPF, DKIM, DMARC and https URLs.

    Prints one line per finding (ok, warning or problem) with the DNS record to publish where
    one is missing or wrong; exit 1 on any problem. COMPOSE_DNS_SERVER=HOST:PORT sends every
    DNS query to that server.
    """
    from composer.doctor import DeliverabilityProblems, run_doctor

    findings = run_doctor(app.project(), timeout=timeout)
    for finding in findings:
        click.echo(str(finding))
    if any(f.level == "problem" for f in findings):
        raise DeliverabilityProblems(findings)
