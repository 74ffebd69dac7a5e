"""Opening an SMTP session the one way `compose send` and `compose serve` both do it.

Implicit TLS on port 465; STARTTLS whenever the server offers it (required when
transport.starttls is true); a login only over TLS, or in clear to this machine. Each caller
owns the connection (closing it, or QUIT) and words its own errors.
"""

from __future__ import annotations

import smtplib
import ssl

from composer.delivery.settings import Settings

IMPLICIT_TLS_PORT = 465


class NoStartTLS(Exception):
    """transport.starttls is true and the server does not offer STARTTLS."""


class LoginInClear(Exception):
    """Logging in would send the password without TLS to another machine."""


def connect(
    host: str, port: int, timeout: float, local_hostname: str | None = None
) -> smtplib.SMTP:
    """A connection to host:port, TLS from the start on port 465; smtplib's errors pass through."""
    if port == IMPLICIT_TLS_PORT:
        return smtplib.SMTP_SSL(
            host, port, local_hostname, timeout=timeout, context=ssl.create_default_context()
        )
    return smtplib.SMTP(host, port, local_hostname, timeout=timeout)


def start_session(
    smtp: smtplib.SMTP, settings: Settings, port: int, *, clear_login_ok: bool
) -> None:
    """EHLO, STARTTLS when offered or required, then the login when one is configured.

    NoStartTLS or LoginInClear when the settings forbid going on; `clear_login_ok`: the
    caller's judgement that the server is this machine. The connection is left to the caller.
    """
    smtp.ehlo()
    secure = port == IMPLICIT_TLS_PORT
    if settings.starttls is not False and smtp.has_extn("starttls"):
        smtp.starttls(context=ssl.create_default_context())
        smtp.ehlo()
        secure = True
    elif settings.starttls:
        raise NoStartTLS
    if settings.username and settings.password is not None:
        if not secure and not clear_login_ok:
            raise LoginInClear
        smtp.login(settings.username, settings.password.get_secret_value())
