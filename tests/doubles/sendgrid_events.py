"""SendGrid's side of the Event Webhook: a real ECDSA P-256 key, bodies signed as SendGrid does.

SendGrid signs timestamp + body with ECDSA (SHA-256), sends the signature base64 (DER) in
X-Twilio-Email-Event-Webhook-Signature and the timestamp in ...-Timestamp, and shows the
public key as base64 of its DER SubjectPublicKeyInfo.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"


class WebhookSigner:
    """A fresh key pair; `headers()` signs a body the way SendGrid's webhook does."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())

    @property
    def public_key(self) -> str:
        """The verification key as SendGrid's settings page shows it."""
        der = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode("ascii")

    def headers(self, body: bytes, at: float | None = None) -> dict[str, str]:
        stamp = str(int(time.time() if at is None else at))
        signature = self.key.sign(stamp.encode("ascii") + body, ec.ECDSA(hashes.SHA256()))
        return {
            SIGNATURE: base64.b64encode(signature).decode("ascii"),
            TIMESTAMP: stamp,
            "Content-Type": "application/json",
        }


def body_of(events: list[dict[str, Any]]) -> bytes:
    """A webhook body: a JSON array, as SendGrid posts it."""
    return json.dumps(events, separators=(",", ":")).encode("utf-8")


def event_for(payload: dict[str, Any], personalization: dict[str, Any], **fields: Any) -> dict:
    """An event as SendGrid reports it for one message: both levels of custom args merged in."""
    event: dict[str, Any] = {
        "email": personalization["to"][0]["email"],
        "timestamp": int(time.time()),
        "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
    }
    event.update(payload.get("custom_args") or {})
    event.update(personalization.get("custom_args") or {})
    event.update(fields)
    return event
