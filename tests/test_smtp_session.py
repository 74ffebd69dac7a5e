"""The SMTP session `compose send` and `compose serve` share, against aiosmtpd on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest
from doubles.delivery_project import make_project, send
from doubles.smtp_servers import smtp_server
from pydantic import SecretStr

from composer.delivery.settings import Settings
from composer.delivery.smtp_session import LoginInClear, NoStartTLS, connect, start_session


def settings(**fields: object) -> Settings:
    return Settings.model_validate({"kind": "smtp", "host": "127.0.0.1", **fields})


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_a_session_logs_in_only_where_it_may() -> None:
    login = {"username": "sender", "password": SecretStr("right-password")}
    with smtp_server(auth=("sender", "right-password")) as server:
        smtp = connect("127.0.0.1", server.port, 10)
        with smtp:
            start_session(smtp, settings(**login), server.port, clear_login_ok=True)
            assert smtp.noop()[0] == 250
        smtp = connect("127.0.0.1", server.port, 10)
        with smtp, pytest.raises(LoginInClear):  # not this machine, no TLS: no password sent
            start_session(smtp, settings(**login), server.port, clear_login_ok=False)
    assert len(server.handler.messages) == 0


def test_starttls_required_but_not_offered_is_refused(tmp_path: Path) -> None:
    with smtp_server() as server:
        smtp = connect("127.0.0.1", server.port, 10)
        with smtp, pytest.raises(NoStartTLS):
            start_session(smtp, settings(starttls=True), server.port, clear_login_ok=True)
        project = make_project(tmp_path, 2, transport="smtp", extra_settings="  starttls: true\n")
        env = {"COMPOSE_SMTP_HOST": "127.0.0.1", "COMPOSE_SMTP_PORT": str(server.port)}
        result = send(project, **env)
    assert result.code != 0
    assert "does not offer STARTTLS, and transport.starttls is true" in result.stderr
    assert server.handler.messages == []
