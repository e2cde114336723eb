"""Places: distances on the ground and the latest earlier case near a case (repeat offences, §3.7 repeats)."""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.models import Case

EARTH_RADIUS_M = 6_371_008.8


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlmb = math.radians(lon2 - lon1)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def nearest_earlier(
    session: Session, case: Case, *, radius_m: float, conditions: list[Any], newest_first: Any
) -> Case | None:
    """The first case by ``newest_first`` of the same category within ``radius_m`` of ``case`` that meets
    ``conditions`` (other than ``case`` itself); None when the radius is 0."""
    if radius_m <= 0:
        return None
    dlat = math.degrees(radius_m / EARTH_RADIUS_M)
    dlon = dlat / max(math.cos(math.radians(case.lat)), 1e-6)
    candidates = session.scalars(
        select(Case)
        .where(
            Case.category == case.category,
            Case.id != case.id,
            *conditions,
            Case.lat.between(case.lat - dlat, case.lat + dlat),
            Case.lon.between(case.lon - dlon, case.lon + dlon),
        )
        .order_by(newest_first, Case.id)
        .limit(50)
    ).all()
    for candidate in candidates:
        if distance_m(case.lon, case.lat, candidate.lon, candidate.lat) <= radius_m:
            return candidate
    return None
