"""Prometheus text exposition, written by hand (the format is tiny; no extra dependency).

Store-derived series (alerts, cases, backlog) are read from the database, so every replica reports
the same totals; ``streetwatch_ingest_requests_total`` counts what this process answered.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable

from service.crud import StoreMetrics


class IngestCounters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def inc(self, result: str) -> None:
        with self._lock:
            self._counts[result] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


REMINDER_OUTCOMES = ("sent", "self_rectified", "reminder_ignored", "repeat")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _family(name: str, kind: str, help_: str, samples: Iterable[tuple[dict[str, str], float]]) -> list[str]:
    lines = [f"# HELP {name} {help_}", f"# TYPE {name} {kind}"]
    for labels, value in samples:
        label_text = ",".join(f'{key}="{_escape(val)}"' for key, val in sorted(labels.items()))
        lines.append(f"{name}{{{label_text}}} {value:g}" if label_text else f"{name} {value:g}")
    return lines


def render(store: StoreMetrics, ingest: dict[str, int], statuses: Iterable[str]) -> str:
    lines: list[str] = []
    lines += _family(
        "streetwatch_alerts_stored_total",
        "counter",
        "Alert records accepted, by event.",
        [({"event": event}, store.alerts.get(event, 0)) for event in ("violation.opened", "violation.closed")],
    )
    results = ("created", "duplicate", "conflict", "invalid", "too_large")
    lines += _family(
        "streetwatch_ingest_requests_total",
        "counter",
        "Ingest requests answered by this process, by result.",
        [({"result": result}, ingest.get(result, 0)) for result in results],
    )
    lines += _family(
        "streetwatch_cases",
        "gauge",
        "Cases by status.",
        [({"status": status}, store.cases.get(status, 0)) for status in statuses],
    )
    lines += _family(
        "streetwatch_cases_overdue", "gauge", "Open cases past their handling deadline.", [({}, store.overdue)]
    )
    lines += _family(
        "streetwatch_outbox_backlog",
        "gauge",
        "Webhook deliveries waiting to be sent.",
        [({}, store.deliveries.get("pending", 0))],
    )
    lines += _family(
        "streetwatch_webhook_deliveries",
        "gauge",
        "Webhook deliveries by status (failed = retries exhausted).",
        [({"status": status}, store.deliveries.get(status, 0)) for status in ("pending", "delivered", "failed")],
    )
    lines += _family(
        "streetwatch_webhook_delivery_failures_total",
        "counter",
        "Failed webhook delivery attempts.",
        [({}, store.delivery_failures)],
    )
    lines += _family(
        "streetwatch_webhook_endpoints_disabled",
        "gauge",
        "Endpoints disabled (410 Gone or by an operator).",
        [({}, store.endpoints_disabled)],
    )
    lines += _family(
        "streetwatch_cameras",
        "gauge",
        "Cameras by reported status.",
        [({"status": status}, store.cameras.get(status, 0)) for status in ("online", "offline")],
    )
    lines += _family(
        "streetwatch_verdicts_total",
        "counter",
        "Review verdicts on AI reports (each case's latest file or reject), by camera, category and verdict.",
        [
            ({"camera": camera, "category": category, "verdict": verdict}, count)
            for (camera, category, verdict), count in sorted(store.verdicts.items())
        ],
    )
    lines += _family(
        "streetwatch_reminders_total",
        "counter",
        "Remind first: reminders sent to responsibility units, and the outcomes (self_rectified: cleared in "
        "time; reminder_ignored: reported at the deadline; repeat: not sent, the place had one recently).",
        [({"outcome": outcome}, store.reminders.get(outcome, 0)) for outcome in REMINDER_OUTCOMES],
    )
    lines += _family(
        "streetwatch_precision",
        "gauge",
        "Share of reviewed AI reports that were filed: filed / (filed + rejected), by camera and category.",
        [({"camera": camera, "category": category}, value) for (camera, category), value in precision(store.verdicts)],
    )
    return "\n".join(lines) + "\n"


def precision(verdicts: dict[tuple[str, str, str], int]) -> list[tuple[tuple[str, str], float]]:
    """filed / (filed + rejected) per (camera, category) that has any verdict, sorted."""
    totals: dict[tuple[str, str], Counter[str]] = {}
    for (camera, category, verdict), count in verdicts.items():
        totals.setdefault((camera, category), Counter())[verdict] += count
    return [
        (key, counts["filed"] / (counts["filed"] + counts["rejected"]))
        for key, counts in sorted(totals.items())
        if counts["filed"] + counts["rejected"] > 0
    ]
