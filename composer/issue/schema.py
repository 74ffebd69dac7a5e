"""The JSON Schema of issue files, for editors with a YAML language server."""

from __future__ import annotations

from typing import Any

from composer.issue.model import Issue


def issue_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of an issue file; unknown keys are rejected as `compose` does."""
    schema = Issue.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "composer newsletter issue"
    schema["description"] = (
        "One newsletter issue (issues/*.yaml). Markdown fields: intro, section intro, body, summary. "
        "Add `# yaml-language-server: $schema=issue.schema.json` at the top of an issue file."
    )
    return schema
