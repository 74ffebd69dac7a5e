"""`compose send` / `compose status` behaviours that do not depend on the transport's peer."""

from __future__ import annotations

import email
import email.policy
import time
from pathlib import Path

from doubles.delivery_project import make_project, run, send
from doubles.smtp_servers import free_port, smtp_server


def test_outbox_is_the_default_and_writes_one_file_per_reader(tmp_path: Path) -> None:
    project = make_project(tmp_path, [("ana@example.org", "Ána Đurić"), ("bo@example.org", "")])
    result = send(project)
    assert result.code == 0, result.stderr
    assert "nothing is mailed" in result.stdout
    files = sorted((project / "outbox" / "x").iterdir())
    assert [f.name for f in files] == ["ana@example.org.eml", "bo@example.org.eml"]
    message = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert message["To"] == "Ána Đurić <ana@example.org>"
    assert email.message_from_bytes(files[1].read_bytes())["To"] == "bo@example.org"


def test_a_list_with_row_errors_is_refused_unless_skipped(tmp_path: Path) -> None:
    project = make_project(tmp_path, [("ana@example.org", "Ana"), ("not-an-address", "X")])
    refused = send(project)
    assert refused.code == 1
    assert "main.csv:3" in refused.stderr
    assert not (project / "outbox").exists()
    skipped = send(project, "--skip-invalid")
    assert skipped.code == 0, skipped.stderr
    assert [f.name for f in (project / "outbox" / "x").iterdir()] == ["ana@example.org.eml"]


def test_unknown_list_and_missing_smtp_host(tmp_path: Path) -> None:
    project = make_project(tmp_path, 1)
    unknown = run(project, "send", str(project / "issues/x.yaml"), "--list", "nope", "--yes")
    assert unknown.code == 1 and "unknown list 'nope'" in unknown.stderr
    no_host = send(project, "--transport", "smtp")
    assert no_host.code == 2
    assert "transport.host" in no_host.stderr and "COMPOSE_SMTP_HOST" in no_host.stderr


def test_an_unreachable_server_stops_the_send_and_keeps_everyone_pending(tmp_path: Path) -> None:
    project = make_project(tmp_path, 5, transport="smtp")
    result = send(project, COMPOSE_SMTP_HOST="127.0.0.1", COMPOSE_SMTP_PORT=str(free_port()))
    assert result.code == 3
    assert "cannot connect to smtp server" in result.stderr
    status = run(project, "status", str(project / "issues/x.yaml"))
    assert "sent 0, failed 0, pending 5" in status.stdout


def test_rate_cap_spreads_the_send(tmp_path: Path) -> None:
    project = make_project(tmp_path, 12, transport="smtp", extra_settings="  max_per_second: 5\n")
    with smtp_server() as server:
        started = time.monotonic()
        result = send(project, COMPOSE_SMTP_HOST="127.0.0.1", COMPOSE_SMTP_PORT=str(server.port))
        elapsed = time.monotonic() - started
    assert result.code == 0, result.stderr
    assert len(server.handler.messages) == 12
    assert elapsed >= 2.0  # 5 now, 5 a second later, 2 a second after that


def test_status_before_and_after(tmp_path: Path) -> None:
    project = make_project(tmp_path, 3)
    before = run(project, "status", str(project / "issues/x.yaml"))
    assert before.code == 0 and "not sent to any list yet" in before.stdout
    send(project)
    (project / "subscribers" / "main.csv").open("a").write("late@example.org,Late,Serbia\n")
    after = run(project, "status", str(project / "issues/x.yaml"))
    assert "main: sent 3, failed 0, pending 1, suppressed 0" in after.stdout


def test_help_lists_the_contract_options() -> None:
    result = run(Path("."), "send", "--help")
    for option in (
        "--list",
        "--segment",
        "--transport",
        "--dry-run",
        "--test",
        "--yes",
        "--skip-invalid",
        "--retry-unknown",
    ):
        assert option in result.stdout


def test_suppressed_readers_are_left_out_and_counted(tmp_path: Path) -> None:
    project = make_project(tmp_path, 3)
    (project / "subscribers" / "suppressions.csv").write_text(
        "email,reason,date\nreader0001@example.org,bounce,2024-01-01\n", encoding="utf-8"
    )
    result = send(project)
    assert result.code == 0, result.stderr
    assert "suppressed: 1" in result.stdout
    names = sorted(f.name for f in (project / "outbox" / "x").iterdir())
    assert names == ["reader0000@example.org.eml", "reader0002@example.org.eml"]
