"""Violation categories, the object class each is detected as, and contract defaults (DESIGN §1, §3.4a)."""

from __future__ import annotations

from typing import Final, Literal

Category = Literal["street_vending", "storefront_overflow", "hanging_laundry", "illegal_structure"]
ObjectClass = Literal["stall", "laundry", "structure"]
Anchor = Literal["bottom_center", "center", "overlap"]

CATEGORIES: Final[tuple[Category, ...]] = (
    "street_vending",
    "storefront_overflow",
    "hanging_laundry",
    "illegal_structure",
)

OBJECT_CLASS_OF: Final[dict[Category, ObjectClass]] = {
    "street_vending": "stall",
    "storefront_overflow": "stall",
    "hanging_laundry": "laundry",
    "illegal_structure": "structure",
}

DEFAULT_DWELL_S: Final[dict[Category, float]] = {
    "street_vending": 180.0,
    "storefront_overflow": 180.0,
    "hanging_laundry": 300.0,
    "illegal_structure": 600.0,
}

DEFAULT_ANCHOR: Final[dict[ObjectClass, Anchor]] = {
    "stall": "bottom_center",
    "structure": "bottom_center",
    "laundry": "center",
}

DEFAULT_MAX_GAP_S: Final[float] = 30.0
"""An incident survives unseen stretches up to this long (DESIGN §3.4a)."""

CONTINUATION_IOU: Final[float] = 0.3
"""A detection continues an incident when its box overlaps the incident's box by at least this IoU."""
