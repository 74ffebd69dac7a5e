"""Settings and secrets: the right host for the chosen transport, keys out of logs, a bad secret file."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from doubles.delivery_project import make_project, send
from doubles.sendgrid_api import SendGridDouble

from composer.delivery.plan import plan_send
from composer.delivery.settings import SENDGRID_HOST, resolve_settings
from composer.delivery.transports import make_transport
from composer.errors import UsageError
from composer.issue.model import TransportSettings
from composer.project import load_project

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
    from composer.delivery.runner import run_send

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


def test_secrets_never_show_in_a_repr_a_dump_or_a_description(tmp_path: Path) -> None:
    password, key = "smtp-password-123", KEY
    smtp = resolve_settings(
        tmp_path,
        TransportSettings(kind="smtp", host="127.0.0.1", username="ana"),
        env={"COMPOSE_SMTP_PASSWORD": password},
    )
    sendgrid = resolve_settings(
        tmp_path, TransportSettings(), "sendgrid", {"SENDGRID_API_KEY": key}
    )
    assert smtp.password is not None and smtp.password.get_secret_value() == password
    assert sendgrid.api_key is not None and sendgrid.api_key.get_secret_value() == key
    shown = [repr(smtp), str(smtp), smtp.model_dump_json(), repr(sendgrid), str(sendgrid)]
    shown += [sendgrid.model_dump_json(), repr(smtp.password), str(sendgrid.api_key)]
    project = make_project(tmp_path / "p", 1)
    plan = plan_send(load_project(project), project / "issues" / "x.yaml", "main")
    shown += [make_transport(s, plan.template, "x").describe() for s in (smtp, sendgrid)]
    assert not any(password in text or key in text for text in shown)


def test_a_missing_setting_names_every_place_it_could_be_set(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as smtp:
        resolve_settings(tmp_path, TransportSettings(kind="smtp"), env={})
    assert "transport.host in newsletter.yaml" in str(smtp.value)
    assert "COMPOSE_SMTP_HOST" in str(smtp.value)
    with pytest.raises(UsageError) as sendgrid:
        resolve_settings(tmp_path, TransportSettings(), "sendgrid", env={})
    assert "SENDGRID_API_KEY" in str(sendgrid.value)


def test_the_environment_overrides_the_file_and_the_flag_overrides_both(tmp_path: Path) -> None:
    configured = TransportSettings(kind="smtp", host="file.example.org", port=2525, retries=7)
    from_file = resolve_settings(tmp_path, configured, env={})
    assert (from_file.host, from_file.port, from_file.retries) == ("file.example.org", 2525, 7)
    env = {"COMPOSE_SMTP_HOST": "env.example.org", "COMPOSE_SMTP_PORT": "26"}
    from_env = resolve_settings(tmp_path, configured, env=env)
    assert (from_env.host, from_env.port, from_env.retries) == ("env.example.org", 26, 7)
    flagged = resolve_settings(tmp_path, configured, "outbox", env=env)
    assert flagged.kind == "outbox" and flagged.host is None and flagged.concurrency == 1
    assert flagged.outbox_path == tmp_path / "outbox" and flagged.retries == 7
