"""The build modes, said once: the CLI offers them without importing the renderer."""

from __future__ import annotations

from typing import Literal, get_args

Mode = Literal["auto", "full", "digest"]
MODES: tuple[Mode, ...] = get_args(Mode)
