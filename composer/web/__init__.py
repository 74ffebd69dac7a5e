"""The public side of a newsletter: one-click unsubscribe, the web archive and its feed."""

from __future__ import annotations

from composer.web.app import create_app

__all__ = ["create_app"]
