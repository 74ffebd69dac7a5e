"""Transports: outbox (files), smtp, sendgrid. Outbox and SendGrid follow the flow fixed in
base.py, a worker thread each; SMTP drives its connections from one thread (pool.py)."""

from __future__ import annotations

from composer.delivery.message import MessageTemplate
from composer.delivery.settings import Settings
from composer.delivery.transports.base import Transport


def make_transport(settings: Settings, template: MessageTemplate, issue: str) -> Transport:
    """The transport named by `settings.kind`, checked against what it can honour."""
    if settings.kind == "smtp":
        from composer.delivery.transports.smtp import SMTPTransport

        return SMTPTransport(settings, template, issue)
    if settings.kind == "sendgrid":
        from composer.delivery.transports.sendgrid import SendGridTransport

        return SendGridTransport(settings, template, issue)
    from composer.delivery.transports.outbox import OutboxTransport

    return OutboxTransport(settings, template, issue)
