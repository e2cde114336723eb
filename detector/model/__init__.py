"""Model room: the ultralytics wrapper, inference backends, the one output adapter, post-processing, tracking.
May import: zones, detector.video; the only rooms importing ultralytics/torch are this one and training."""
