"""Incidents room: the dwell engine (one incident per violation, keyed by place) and one camera's pipeline.
May import: zones, detector.model, detector.evidence."""
