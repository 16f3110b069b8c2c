"""What every config section is built from: the frozen, strict section base and the bounded
value types the sections share."""

from __future__ import annotations

import re
from typing import Annotated, Literal

import msgspec

Mode = Literal["manual", "supervised", "headless"]
Fraction = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
PositiveFraction = Annotated[float, msgspec.Meta(gt=0.0, le=1.0)]
Seconds = Annotated[float, msgspec.Meta(gt=0.0, le=7 * 86400.0)]
Count = Annotated[int, msgspec.Meta(ge=1, le=100_000)]
EnvName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=200)]
"""The NAME of an environment variable (secrets come from the environment, never the file)."""
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class ConfigSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every config section: frozen, keyword-only, unknown keys rejected."""
