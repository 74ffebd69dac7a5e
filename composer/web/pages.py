"""The few HTML pages `compose serve` renders itself, as autoescaped Jinja templates."""

from __future__ import annotations

from typing import Any

from jinja2 import DictLoader, Environment, StrictUndefined

_BASE = """<!doctype html>
<html lang="{{ language }}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="{{ robots | default('noindex') }}">
<title>{% block title %}{{ newsletter }}{% endblock %}</title>
{% block head %}{% endblock %}
<style>
  body { font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
         color: #1d1d1f; background: #f5f5f7; margin: 0; }
  main { max-width: 40rem; margin: 3rem auto; padding: 2rem; background: #fff;
         border-radius: 8px; box-shadow: 0 1px 3px rgba(0,0,0,.12); }
  h1 { font-size: 1.4rem; margin-top: 0; }
  button { font: inherit; padding: .6rem 1.4rem; border: 0; border-radius: 4px;
           background: #1f6fb2; color: #fff; cursor: pointer; }
  ol { padding-left: 1.2rem; }
  li { margin: .6rem 0; }
  .date { color: #6e6e73; font-size: .9rem; }
  @media (prefers-color-scheme: dark) {
    body { background: #1d1d1f; color: #f5f5f7; }
    main { background: #2c2c2e; box-shadow: none; }
    a { color: #8ab4f8; }
    .date { color: #aeaeb2; }
  }
</style>
</head>
<body>
<main>
{% block main %}{% endblock %}
</main>
</body>
</html>
"""

_CONFIRM = """{% extends "base.html" %}
{% block title %}Unsubscribe — {{ newsletter }}{% endblock %}
{% block main %}
<h1>Unsubscribe from {{ newsletter }}?</h1>
<p>Press the button to stop all mailings from {{ newsletter }} to {{ masked }}.</p>
<form method="post">
  <input type="hidden" name="List-Unsubscribe" value="One-Click">
  <button type="submit">Unsubscribe</button>
</form>
<p class="date">Nothing changes until you press the button.</p>
{% endblock %}
"""

_DONE = """{% extends "base.html" %}
{% block title %}Unsubscribed — {{ newsletter }}{% endblock %}
{% block main %}
<h1>You are unsubscribed</h1>
<p>{{ masked }} will receive no more mailings from {{ newsletter }}.</p>
{% endblock %}
"""

_ERROR = """{% extends "base.html" %}
{% block title %}{{ heading }} — {{ newsletter }}{% endblock %}
{% block main %}
<h1>{{ heading }}</h1>
<p>{{ message }}</p>
{% endblock %}
"""

_INDEX = """{% extends "base.html" %}
{% block title %}{{ newsletter }} — archive{% endblock %}
{% block head %}
<link rel="alternate" type="application/atom+xml" title="{{ newsletter }}" href="feed.xml">
{% endblock %}
{% block main %}
<h1>{{ newsletter }}</h1>
{% if issues %}
<ol reversed>
{% for issue in issues %}
  <li><a href="{{ issue.slug }}/">{{ issue.title }}</a>
      <span class="date"><time datetime="{{ issue.published.date().isoformat() }}">
      {{- issue.published.strftime("%-d %B %Y") }}</time></span>
      {% if issue.summary %}<br>{{ issue.summary }}{% endif %}</li>
{% endfor %}
</ol>
{% else %}
<p>No issues have been published yet.</p>
{% endif %}
<p><a href="feed.xml">Atom feed</a></p>
{% endblock %}
"""

_ENV = Environment(
    loader=DictLoader(
        {
            "base.html": _BASE,
            "confirm.html": _CONFIRM,
            "done.html": _DONE,
            "error.html": _ERROR,
            "index.html": _INDEX,
        }
    ),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render_page(name: str, **context: Any) -> str:
    """Render one of the built-in pages with `context`, every value HTML-escaped."""
    return _ENV.get_template(name).render(**context)
