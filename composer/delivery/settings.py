"""Transport settings resolved in one place: flag > environment > newsletter.yaml > default."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from composer.errors import UsageError
from composer.issue.model import TransportSettings

KINDS = ("outbox", "smtp", "sendgrid")
SENDGRID_HOST = "https://api.sendgrid.com"
SENDGRID_MAX_BATCH = 1000


class Secret:
    """A credential that never shows itself in a repr, a log line or a traceback."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The credential itself, only for handing to the peer."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __reduce__(self) -> object:
        raise TypeError("a Secret cannot be pickled")


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


def keep_out_of_logs(secret: Secret) -> None:
    """From now on, this process's HTTP client log shows `secret` as [redacted]."""
    _SCRUB.secrets.add(secret.reveal())
    logger = logging.getLogger(HTTP_CLIENT_LOGGER)
    if _SCRUB not in logger.filters:
        logger.addFilter(_SCRUB)


@dataclass(frozen=True)
class Settings:
    """Everything a transport needs, resolved; secrets wrapped."""

    kind: str
    outbox_dir: Path
    host: str | None = None
    port: int | None = None
    starttls: bool | None = None  # None: use STARTTLS when the server offers it
    username: str | None = None
    password: Secret | None = field(default=None, repr=False)
    api_key: Secret | None = field(default=None, repr=False)
    concurrency: int = 4
    asm_group_id: int | None = None
    categories: tuple[str, ...] = ()
    timeout: float = 30.0
    max_per_second: float | None = None
    max_per_hour: float | None = None
    retries: int = 4
    backoff: float = 2.0
    pipelining: bool = True
    batch_size: int = 1

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
    if kind != configured.kind:
        # The file's host, port, user, group and categories describe its own transport: a
        # --transport override must not send SendGrid calls to the SMTP host, or vice versa.
        configured = TransportSettings(
            kind=kind,
            outbox_dir=configured.outbox_dir,
            concurrency=configured.concurrency,
            timeout=configured.timeout,
            max_per_second=configured.max_per_second,
            max_per_hour=configured.max_per_hour,
            retries=configured.retries,
            backoff=configured.backoff,
            pipelining=configured.pipelining,
        )
    common = {
        "kind": kind,
        "outbox_dir": root / configured.outbox_dir,
        "concurrency": configured.concurrency,
        "asm_group_id": configured.asm_group_id,
        "categories": tuple(configured.categories),
        "timeout": configured.timeout,
        "max_per_second": configured.max_per_second,
        "max_per_hour": configured.max_per_hour,
        "retries": configured.retries,
        "backoff": configured.backoff,
        "pipelining": configured.pipelining,
    }
    if kind == "outbox":
        return Settings(**{**common, "concurrency": 1})
    if kind == "smtp":
        return _smtp(configured, env, common)
    return _sendgrid(configured, env, common)


def _smtp(configured: TransportSettings, env: Mapping[str, str], common: dict) -> Settings:
    host = _first(env.get("COMPOSE_SMTP_HOST"), configured.host)
    if host is None:
        raise UsageError(
            "the smtp transport needs a server: set transport.host in newsletter.yaml "
            "or the COMPOSE_SMTP_HOST environment variable"
        )
    port = _first(_env_int(env, "COMPOSE_SMTP_PORT"), configured.port)
    starttls = configured.starttls
    if port is None:
        port = 587 if starttls else 25
    username = _first(env.get("COMPOSE_SMTP_USERNAME"), configured.username)
    password = env.get("COMPOSE_SMTP_PASSWORD") or None
    if username and not password:
        raise UsageError(
            f"smtp user '{username}' needs a password in the COMPOSE_SMTP_PASSWORD environment "
            "variable (passwords are never read from newsletter.yaml)"
        )
    return Settings(
        **common,
        host=str(host),
        port=int(port),  # type: ignore[arg-type]
        starttls=starttls,
        username=str(username) if username else None,
        password=Secret(password) if password else None,
    )


def _sendgrid(configured: TransportSettings, env: Mapping[str, str], common: dict) -> Settings:
    key = env.get("SENDGRID_API_KEY") or None
    if key is None:
        raise UsageError(
            "the sendgrid transport needs an API key in the SENDGRID_API_KEY environment variable "
            "(keys are never read from newsletter.yaml)"
        )
    host = _first(env.get("COMPOSE_SENDGRID_HOST"), configured.host, SENDGRID_HOST)
    batch = configured.batch_size or SENDGRID_MAX_BATCH
    return Settings(**common, host=str(host), api_key=Secret(key), batch_size=batch)
