"""Hostile merge fields: template tricks are refused at validation, hostile cells stay inert."""

from __future__ import annotations

import email
from email.policy import default as default_policy
from pathlib import Path

import pytest

from tests.conftest import copy_project, run_compose
from tests.test_variants import FIXTURE, SECRET, part

HOSTILE_ISSUE = """\
volume: 9
date: 2024-05-01
subject: "{{ ''.__class__ }} news"
preheader: "{{ name.__class__.__mro__ }}"
intro: |
  {% for x in range(3) %}loop{% endfor %}

  {{ lipsum() }} and {{ name | upper }} and {{ cycler.__init__.__globals__ }}
sections:
  - title: "<script>alert(1)</script> {{ name }}"
    articles:
      - title: Safe
        dateline: "1 May 2024"
        body: |
          {# a comment #} {{ name | default(name) }} {{ name|default("x", true) }}
          {{ config }} {{ "{{" }} stays literal {{ 7 * 7 }}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_project(FIXTURE, tmp_path)


def test_every_template_trick_is_refused_at_validation_with_its_place(project: Path) -> None:
    (project / "issues" / "hostile.yaml").write_text(HOSTILE_ISSUE, encoding="utf-8")
    result = run_compose("validate", "issues/hostile.yaml", cwd=project)
    assert result.code == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    places = [line.split(": ", 1)[0] for line in lines]
    assert places == [
        "issues/hostile.yaml:3:11",  # {{ ''.__class__ }}
        "issues/hostile.yaml:4:13",  # name.__class__.__mro__
        "issues/hostile.yaml:6:3",  # {% for %}: the first refusal of the intro
        "issues/hostile.yaml:10:39",  # a merge field in a title
        "issues/hostile.yaml:15:11",  # {# comment #}: the first refusal of the body
    ]
    assert "no attributes, calls, other filters or loops" in lines[0]
    assert not (project / "build").exists()


def test_each_refused_form_alone(project: Path) -> None:
    for expression in (
        "{{ lipsum() }}",
        "{{ name | upper }}",
        "{{ cycler.__init__.__globals__ }}",
        '{{ name | default("x", true) }}',
        "{{ name | default(name) }}",
        "{{ 7 * 7 }}",
        "{{ Name }}",  # {{ config }} is a plain field: refused by send when no list has it
        "{% raw %}{{ name }}{% endraw %}",
        "{{ name",
    ):
        issue = project / "issues" / "one.yaml"
        text = (project / "issues" / "tailored.yaml").read_text(encoding="utf-8")
        issue.write_text(
            text.replace("Here is the news", f"Here is {expression}"), encoding="utf-8"
        )
        result = run_compose("validate", "issues/one.yaml", cwd=project)
        assert result.code == 1, expression
        assert result.stderr.startswith("issues/one.yaml:9:11: "), (expression, result.stderr)


def test_hostile_cells_are_inert_text_and_never_break_a_header(project: Path) -> None:
    (project / "subscribers" / "readers.csv").write_text(
        "email,name,country,organization,language,interests\n"
        "eve@example.org,\"Eve\r\nBcc: victim@example.com\",{{ ''.__class__ }},"
        "<script>alert(1)</script>,en,I\n",
        encoding="utf-8",
    )
    result = run_compose(
        "send", "issues/tailored.yaml", "--list", "readers", "--yes", cwd=project, env=SECRET
    )
    assert result.code == 0, result.stderr
    raw = (project / "outbox" / "tailored" / "eve@example.org.eml").read_bytes()
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nBcc:" not in head
    message = email.message_from_bytes(raw, policy=default_policy)
    assert message["Subject"] == "Eve Bcc: victim@example.com, your UNODC SEE news"
    html, text = part(message, "html"), part(message, "plain")
    assert "officers from {{ ''.__class__ }} trained" in " ".join(text.split())
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # the preheader's organization
    assert "<script>" not in html
    assert "&lt;class" not in html and "<class 'str'>" not in text  # never evaluated
