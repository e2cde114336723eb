"""Audit room: recorded video into alerts.jsonl, summary.json, report and evidence; the sample clips' truth.
May import: zones, detector.video, detector.model, detector.evidence, detector.incidents, detector.live."""
