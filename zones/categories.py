"""Violation categories, the object class each is detected as, and contract defaults (DESIGN §1, §3.4a)."""

from __future__ import annotations

from typing import Final, Literal

Category = Literal[
    "street_vending", "storefront_overflow", "hanging_laundry", "illegal_structure", "sidewalk_obstruction"
]
ModelClass = Literal["stall", "laundry", "structure"]
"""The classes a detector model supplies (``class_map`` targets)."""
ObjectClass = Literal["stall", "laundry", "structure", "object"]
"""``ModelClass`` and ``object``: something new that stays, found by the stationary-object finder."""
Anchor = Literal["bottom_center", "center", "overlap"]

CATEGORIES: Final[tuple[Category, ...]] = (
    "street_vending",
    "storefront_overflow",
    "hanging_laundry",
    "illegal_structure",
    "sidewalk_obstruction",
)

OBJECT_CLASS_OF: Final[dict[Category, ObjectClass]] = {
    "street_vending": "stall",
    "storefront_overflow": "stall",
    "hanging_laundry": "laundry",
    "illegal_structure": "structure",
    "sidewalk_obstruction": "object",
}

CATEGORY_ZH: Final[dict[Category, str]] = {
    "street_vending": "占道经营",
    "storefront_overflow": "出店经营",
    "hanging_laundry": "沿街晾晒",
    "illegal_structure": "乱搭乱建",
    "sidewalk_obstruction": "占道堆物",
}
"""The names officers know each category by (数字城管 case classes)."""

CATEGORY_LABELS: Final[dict[Category, str]] = {
    category: f"{CATEGORY_ZH[category]} {category.replace('_', ' ')}" for category in CATEGORIES
}
"""Chinese and English name of each category, as pages, reports and CAP show it."""

DEFAULT_DWELL_S: Final[dict[Category, float]] = {
    "street_vending": 180.0,
    "storefront_overflow": 180.0,
    "hanging_laundry": 300.0,
    "illegal_structure": 600.0,
    "sidewalk_obstruction": 120.0,
}

DEFAULT_ANCHOR: Final[dict[ObjectClass, Anchor]] = {
    "stall": "bottom_center",
    "structure": "bottom_center",
    "laundry": "center",
    "object": "bottom_center",
}

DEFAULT_MAX_GAP_S: Final[float] = 30.0
"""An incident survives unseen stretches up to this long (DESIGN §3.4a)."""

CONTINUATION_IOU: Final[float] = 0.3
"""A detection continues an incident when its box overlaps the incident's box by at least this IoU."""
