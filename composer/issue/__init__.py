"""The input stage: an issue file or newsletter.yaml read with line marks, validated into models.

marks (YAML with the line and column of every value, hostile YAML refused), syntax (PyYAML's
errors as advice), model (pydantic models), rules (references, links, addresses), load (all of it
together, every problem of a file at once), schema (the JSON Schema for editors).
"""
