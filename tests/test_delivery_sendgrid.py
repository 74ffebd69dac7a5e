"""`compose send --transport sendgrid`: the official client against the local v3 API double."""

from __future__ import annotations

import html
import time
from pathlib import Path

from doubles.delivery_project import make_project, run, send
from doubles.sendgrid_api import SendGridDouble
from doubles.smtp_servers import free_port

from composer.delivery.tokens import read_token

KEY = "SG.secret-test-key-do-not-print"


def env(double: SendGridDouble, key: str = KEY) -> dict[str, str]:
    return {"SENDGRID_API_KEY": key, "COMPOSE_SENDGRID_HOST": double.url}


def readers(n: int) -> list[str]:
    return [f"reader{i:04d}@example.org" for i in range(n)]


def mail_sends(double: SendGridDouble) -> list:
    return [r for r in double.requests if r.path == "/v3/mail/send"]


def test_everyone_once_in_requests_of_at_most_1000(tmp_path: Path) -> None:
    project = make_project(tmp_path, 2500, transport="sendgrid")
    with SendGridDouble(api_key=KEY) as double:
        result = send(project, **env(double))
        assert result.code == 0, result.stderr
        again = send(project, **env(double))
    assert again.code == 0 and "skipped (already sent): 2500" in again.stdout
    assert sorted(double.recipients()) == readers(2500)
    requests = mail_sends(double)
    assert [r.status for r in requests] == [202, 202, 202]
    assert sorted(len(r.body["personalizations"]) for r in requests) == [500, 1000, 1000]
    assert all(r.headers["Authorization"] == f"Bearer {KEY}" for r in requests)
    payload, personal = double.personalization("reader0042@example.org")
    assert [c["type"] for c in payload["content"]] == ["text/plain", "text/html"]
    assert payload["headers"] == {
        "List-Id": "Test Bulletin <main.example.org>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    assert payload["custom_args"] == {"issue": "x", "list": "main"}
    # Privacy first: no SendGrid link rewriting, no open pixel unless tracking.opens asks.
    assert payload["tracking_settings"] == {
        "click_tracking": {"enable": False, "enable_text": False},
        "open_tracking": {"enable": False},
        "subscription_tracking": {"enable": False},
    }
    assert payload["from"] == {"email": "bulletin@example.org", "name": "Test Bulletin"}
    assert payload["reply_to"] == {"email": "desk@example.org", "name": "Test Desk"}
    assert personal["to"] == [{"email": "reader0042@example.org", "name": "Reader 42"}]
    text, body = double.rendered("reader0042@example.org")
    url = personal["headers"]["List-Unsubscribe"].split(">")[0].lstrip("<")
    secret = (project / ".compose" / "secret").read_bytes().strip()
    assert read_token(secret, url.rsplit("/", 1)[1]) == ("main", "reader0042@example.org")
    assert f"Unsubscribe: {url}" in text
    assert f'href="{html.escape(url)}"' in body
    assert "-compose" not in text + body  # every substitution tag was filled
    status = run(project, "status", str(project / "issues" / "x.yaml"))
    assert "main: sent 2500, failed 0, pending 0" in status.stdout


def test_categories_and_asm_group_when_configured(tmp_path: Path) -> None:
    settings = "  categories: [newsletter, vol-1]\n  asm_group_id: 42\n"
    project = make_project(tmp_path, 2, transport="sendgrid", extra_settings=settings)
    with SendGridDouble(api_key=KEY) as double:
        result = send(project, **env(double))
    assert result.code == 0, result.stderr
    payload = mail_sends(double)[0].body
    assert payload["categories"] == ["newsletter", "vol-1"]
    assert payload["asm"] == {"group_id": 42}


def test_429_waits_for_the_reset_and_5xx_is_retried(tmp_path: Path) -> None:
    project = make_project(tmp_path, 3, transport="sendgrid")
    with SendGridDouble(api_key=KEY) as double:
        double.fail_next(429, reset_after=0.2)
        double.fail_next(500, count=2)
        started = time.monotonic()
        result = send(project, **env(double))
        elapsed = time.monotonic() - started
    assert result.code == 0, result.stderr
    assert [r.status for r in mail_sends(double)] == [429, 500, 500, 202]
    assert elapsed >= 0.2
    assert sorted(double.recipients()) == readers(3)


def test_a_bad_key_stops_the_send_and_is_never_shown(tmp_path: Path) -> None:
    project = make_project(tmp_path, 3, transport="sendgrid")
    wrong = "SG.wrong-key-that-must-stay-secret"
    with SendGridDouble(api_key=KEY) as double:
        result = send(project, **env(double, key=wrong))
        traced = run(project, "--traceback", "send", str(project / "issues/x.yaml"), "--list", "main",
                     "--yes", **env(double, key=wrong))  # fmt: skip
    assert result.code == 3
    assert "SendGrid 401" in result.stderr and "SENDGRID_API_KEY" in result.stderr
    for output in (result.stdout, result.stderr, traced.stdout, traced.stderr):
        assert wrong not in output and "wrong-key" not in output
    for path in (project / ".compose").rglob("*"):
        assert path.is_dir() or b"wrong-key" not in path.read_bytes()
    status = run(project, "status", str(project / "issues" / "x.yaml"))
    assert "main: sent 0, failed 0, pending 3" in status.stdout


def test_a_400_for_one_address_refuses_only_that_one(tmp_path: Path) -> None:
    project = make_project(tmp_path, 5, transport="sendgrid")
    with SendGridDouble(api_key=KEY, invalid_addresses={"reader0003@example.org"}) as double:
        result = send(project, **env(double))
    assert result.code == 0, result.stderr  # final for that address; nothing left to retry
    assert (
        "refused reader0003@example.org: SendGrid 400: Does not contain a valid address."
        in result.stdout
    )
    assert sorted(double.recipients()) == [r for r in readers(5) if r != "reader0003@example.org"]


def test_a_400_for_the_whole_request_fails_the_batch_with_sendgrids_message(tmp_path: Path) -> None:
    project = make_project(tmp_path, 2, transport="sendgrid")
    with SendGridDouble(api_key=KEY) as double:
        double.fail_next(400)
        result = send(project, **env(double))
    assert result.code == 3
    assert "SendGrid 400: Bad Request" in result.stdout


def test_an_unreachable_api_is_retried_then_reported(tmp_path: Path) -> None:
    project = make_project(tmp_path, 1, transport="sendgrid", extra_settings="  retries: 2\n")
    result = send(
        project, SENDGRID_API_KEY=KEY, COMPOSE_SENDGRID_HOST=f"http://127.0.0.1:{free_port()}"
    )
    assert result.code == 3
    assert "SendGrid unreachable" in result.stdout and "gave up after 2 attempts" in result.stdout


def test_without_a_key_it_says_where_to_put_one(tmp_path: Path) -> None:
    project = make_project(tmp_path, 1, transport="sendgrid")
    result = send(project)
    assert result.code == 2
    assert "SENDGRID_API_KEY" in result.stderr


def test_an_option_smtp_cannot_honour_is_an_error(tmp_path: Path) -> None:
    project = make_project(tmp_path, 1, transport="smtp", extra_settings="  asm_group_id: 42\n")
    result = send(project, COMPOSE_SMTP_HOST="127.0.0.1", COMPOSE_SMTP_PORT="9")
    assert result.code == 2
    assert "cannot honour transport.asm_group_id" in result.stderr


def test_secrets_stay_out_of_reprs(tmp_path: Path, monkeypatch) -> None:
    from composer.delivery.plan import plan_send
    from composer.project import load_project

    project = make_project(tmp_path, 1, transport="sendgrid")
    monkeypatch.setenv("SENDGRID_API_KEY", KEY)
    monkeypatch.setenv("COMPOSE_SMTP_PASSWORD", "hunter2-password")
    monkeypatch.setenv("COMPOSE_SMTP_USERNAME", "user")
    monkeypatch.setenv("COMPOSE_SMTP_HOST", "127.0.0.1")
    plan = plan_send(load_project(project), project / "issues/x.yaml", "main")
    channel = plan.transport.open_channel()
    smtp = plan_send(load_project(project), project / "issues/x.yaml", "main", transport="smtp")
    for thing in (plan, plan.settings, plan.transport, channel, smtp.settings, smtp.transport):
        assert KEY not in repr(thing) and "hunter2" not in repr(thing)
    assert KEY not in str(vars(plan.settings)) and "hunter2" not in str(vars(smtp.settings))
