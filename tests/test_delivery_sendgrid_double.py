"""The SendGrid double itself refuses what SendGrid refuses, so tests against it mean something."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from doubles.sendgrid_api import SendGridDouble, validate_mail_send

KEY = "SG.double-key"


def mail(n: int = 1, **extra) -> dict:
    payload = {
        "personalizations": [{"to": [{"email": f"r{i}@example.org"}]} for i in range(n)],
        "from": {"email": "news@example.org"},
        "subject": "Hi",
        "content": [
            {"type": "text/plain", "value": "t"},
            {"type": "text/html", "value": "<p>h</p>"},
        ],
    }
    payload.update(extra)
    return payload


def fields(payload: dict) -> list[str | None]:
    return [e["field"] for e in validate_mail_send(payload)]


def test_a_valid_message_passes() -> None:
    assert validate_mail_send(mail(1000)) == []


def test_limits_and_uniqueness() -> None:
    assert "personalizations" in fields(mail(1001))
    twice = mail(2)
    twice["personalizations"][1]["to"][0]["email"] = "R0@example.org"
    assert fields(twice) == ["personalizations.1.to"]
    many = mail(1)
    many["personalizations"][0]["to"] = [{"email": f"x{i}@example.org"} for i in range(1001)]
    assert "personalizations" in fields(many)
    bad = mail(3)
    bad["personalizations"][2]["to"][0]["email"] = "not an address"
    assert fields(bad) == ["personalizations.2.to.0.email"]


def test_content_order_headers_and_extras() -> None:
    html_first = mail(
        content=[{"type": "text/html", "value": "h"}, {"type": "text/plain", "value": "t"}]
    )
    assert fields(html_first) == ["content.0.type"]
    assert fields(mail(headers={"Reply-To": "x@example.org"})) == ["headers"]
    assert fields(mail(headers={"List-Id": "a\r\nBcc: x@y.z"})) == ["headers"]
    assert fields(mail(headers={"List-Unsubscribe": "<https://x/u/t>"})) == []
    assert fields(mail(categories=[str(i) for i in range(11)])) == ["categories"]
    assert fields(mail(custom_args={"n": 1})) == ["custom_args"]
    assert fields(mail(asm={"group_id": "7"})) == ["asm.group_id"]
    assert "from.email" in fields(mail(**{"from": {}}))
    assert "subject" in fields(mail(subject=""))


def _call(double: SendGridDouble, path: str, body: dict | None = None, key: str = KEY):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        double.url + path, data=data, headers={"Authorization": f"Bearer {key}",
                                               "Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            raw = response.read()
            return response.status, dict(response.headers), json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


def test_http_answers() -> None:
    with SendGridDouble(api_key=KEY) as double:
        status, headers, body = _call(double, "/v3/mail/send", mail(2))
        assert status == 202 and headers["X-Message-Id"] and body is None
        assert _call(double, "/v3/mail/send", mail(), key="nope")[0] == 401
        status, _, body = _call(double, "/v3/mail/send", mail(1001))
        assert status == 400 and {"message", "field", "help"} <= set(body["errors"][0])
        double.fail_next(429, reset_after=5)
        status, headers, _ = _call(double, "/v3/mail/send", mail())
        assert status == 429 and int(headers["X-RateLimit-Reset"]) > 0
        double.fail_next(500)
        assert _call(double, "/v3/mail/send", mail())[0] == 500
        assert double.recipients() == ["r0@example.org", "r1@example.org"]


@pytest.mark.parametrize("kind", ["unsubscribes", "bounces", "spam_reports"])
def test_suppression_lists_page_by_limit_and_offset(kind: str) -> None:
    rows = [f"s{i}@example.org" for i in range(7)]
    with SendGridDouble(api_key=KEY, **{kind: rows}) as double:
        status, _, first = _call(double, f"/v3/suppression/{kind}?limit=5&offset=0")
        _, _, second = _call(double, f"/v3/suppression/{kind}?limit=5&offset=5")
        assert _call(double, f"/v3/suppression/{kind}", key="nope")[0] == 401
    assert status == 200
    assert [r["email"] for r in first + second] == rows
    assert all(isinstance(r["created"], int) for r in first)


def test_asm_group_suppressions() -> None:
    with SendGridDouble(api_key=KEY, group_suppressions={42: ["a@example.org"]}) as double:
        assert _call(double, "/v3/asm/groups/42/suppressions")[2] == ["a@example.org"]
        assert _call(double, "/v3/asm/groups/7/suppressions")[0] == 404
