"""Settings and secrets: the right host for the chosen transport, keys out of logs, a bad secret file."""

from __future__ import annotations

import logging
from pathlib import Path

from doubles.delivery_project import make_project, send
from doubles.sendgrid_api import SendGridDouble

from composer.delivery.settings import SENDGRID_HOST, resolve_settings
from composer.issue.model import TransportSettings

KEY = "SG.another-secret-test-key"


def test_a_transport_override_does_not_inherit_the_other_transports_host(tmp_path: Path) -> None:
    smtp_config = TransportSettings(kind="smtp", host="smtp.example.org", port=2525, asm_group_id=7)
    sendgrid = resolve_settings(tmp_path, smtp_config, "sendgrid", env={"SENDGRID_API_KEY": KEY})
    assert sendgrid.host == SENDGRID_HOST and sendgrid.asm_group_id is None
    sendgrid_config = TransportSettings(kind="sendgrid", host="http://127.0.0.1:9", asm_group_id=7)
    smtp = resolve_settings(
        tmp_path, sendgrid_config, "smtp", env={"COMPOSE_SMTP_HOST": "127.0.0.1"}
    )
    assert smtp.host == "127.0.0.1" and smtp.port == 25 and smtp.asm_group_id is None
    outbox = resolve_settings(tmp_path, sendgrid_config, "outbox", env={})
    assert outbox.delivery_options() == {}  # so `--transport outbox` works on a SendGrid project


def test_the_api_key_stays_out_of_the_http_clients_debug_log(
    tmp_path: Path, monkeypatch, caplog
) -> None:
    from composer.delivery.plan import plan_send
    from composer.delivery.runner import run_send
    from composer.project import load_project

    project = make_project(tmp_path, 2, transport="sendgrid")
    with SendGridDouble(api_key=KEY) as double:
        monkeypatch.setenv("SENDGRID_API_KEY", KEY)
        monkeypatch.setenv("COMPOSE_SENDGRID_HOST", double.url)
        caplog.set_level(logging.DEBUG)
        run_send(plan_send(load_project(project), project / "issues" / "x.yaml", "main"))
        sends = [r for r in double.requests if r.path == "/v3/mail/send"]
    assert len(sends) == 1  # the client really talked to the API
    assert "[redacted]" in caplog.text  # it logged its headers, with the key blanked
    assert KEY not in caplog.text


def test_an_empty_secret_file_is_one_clear_line(tmp_path: Path) -> None:
    project = make_project(tmp_path, 1)
    (project / ".compose").mkdir(exist_ok=True)
    (project / ".compose" / "secret").write_bytes(b"\n")
    result = send(project)
    assert result.code == 1
    assert result.stderr.strip().endswith(
        "the token secret file is empty; delete it to generate a new one"
    )
    assert "Traceback" not in result.stderr
