"""Transport settings resolved in one place: flag > environment > newsletter.yaml > default."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import Field, SecretStr

from composer.errors import UsageError
from composer.issue.model import TransportSettings

KINDS = ("outbox", "smtp", "sendgrid")
SENDGRID_HOST = "https://api.sendgrid.com"
SENDGRID_MAX_BATCH = 1000


class _ScrubSecrets(logging.Filter):
    """Blanks known secrets in log records (the SendGrid HTTP client logs its request headers)."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def __repr__(self) -> str:
        return "<_ScrubSecrets>"

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(secret in message for secret in self.secrets):
            for secret in self.secrets:
                message = message.replace(secret, "[redacted]")
            record.msg, record.args = message, None
        return True


_SCRUB = _ScrubSecrets()
HTTP_CLIENT_LOGGER = "python_http_client.client"


def keep_out_of_logs(secret: SecretStr) -> None:
    """From now on, this process's HTTP client log shows `secret` as [redacted]."""
    _SCRUB.secrets.add(secret.get_secret_value())  # kept only to find it, never shown
    logger = logging.getLogger(HTTP_CLIENT_LOGGER)
    if _SCRUB not in logger.filters:
        logger.addFilter(_SCRUB)


class Settings(TransportSettings):
    """The file's `transport:` with the environment and the flag applied; secrets wrapped."""

    password: SecretStr | None = Field(default=None, repr=False)
    api_key: SecretStr | None = Field(default=None, repr=False)

    @property
    def outbox_path(self) -> Path:
        """The outbox folder (resolved against the project when the settings were)."""
        return Path(self.outbox_dir)

    def delivery_options(self) -> dict[str, object]:
        """Options that change what is delivered (a transport must honour them or refuse)."""
        options: dict[str, object] = {}
        if self.asm_group_id is not None:
            options["asm_group_id"] = self.asm_group_id
        if self.categories:
            options["categories"] = list(self.categories)
        return options


def _env_int(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise UsageError(f"environment variable {name}={raw!r} is not a whole number") from None


def _first(*values: object) -> object:
    return next((value for value in values if value is not None and value != ""), None)


# What in the file describes its own peer: a --transport override must not send SendGrid calls
# to the SMTP host, or vice versa, so these fall back to their defaults then.
_PEER_FIELDS = frozenset(
    {"host", "port", "starttls", "username", "asm_group_id", "categories", "batch_size"}
)


def resolve_settings(
    root: Path,
    configured: TransportSettings,
    kind: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """The settings of the chosen transport; a missing one names every place it could be set."""
    env = os.environ if env is None else env
    kind = kind or configured.kind
    if kind not in KINDS:
        raise UsageError(f"unknown transport '{kind}' (use {', '.join(KINDS)})")
    fields = configured.model_dump(exclude=set(_PEER_FIELDS) if kind != configured.kind else None)
    fields.update(kind=kind, outbox_dir=str(root / configured.outbox_dir))
    if kind == "outbox":
        fields["concurrency"] = 1
    elif kind == "smtp":
        fields.update(_smtp(fields, env))
    else:
        fields.update(_sendgrid(fields, env))
    return Settings.model_validate(fields)


def _smtp(configured: Mapping[str, object], env: Mapping[str, str]) -> dict[str, object]:
    host = _first(env.get("COMPOSE_SMTP_HOST"), configured.get("host"))
    if host is None:
        raise UsageError(
            "the smtp transport needs a server: set transport.host in newsletter.yaml "
            "or the COMPOSE_SMTP_HOST environment variable"
        )
    port = _first(_env_int(env, "COMPOSE_SMTP_PORT"), configured.get("port"))
    if port is None:
        port = 587 if configured.get("starttls") else 25
    username = _first(env.get("COMPOSE_SMTP_USERNAME"), configured.get("username"))
    password = env.get("COMPOSE_SMTP_PASSWORD") or None
    if username and not password:
        raise UsageError(
            f"smtp user '{username}' needs a password in the COMPOSE_SMTP_PASSWORD environment "
            "variable (passwords are never read from newsletter.yaml)"
        )
    return {
        "host": host,
        "port": port,
        "username": username or None,
        "password": SecretStr(password) if password else None,
    }


def _sendgrid(configured: Mapping[str, object], env: Mapping[str, str]) -> dict[str, object]:
    key = env.get("SENDGRID_API_KEY") or None
    if key is None:
        raise UsageError(
            "the sendgrid transport needs an API key in the SENDGRID_API_KEY environment variable "
            "(keys are never read from newsletter.yaml)"
        )
    host = _first(env.get("COMPOSE_SENDGRID_HOST"), configured.get("host"), SENDGRID_HOST)
    batch = configured.get("batch_size") or SENDGRID_MAX_BATCH
    return {"host": host, "api_key": SecretStr(key), "batch_size": batch}
