"""Training room: the scene generator (renders, sample clips), datasets, training, evaluation, calibration, promotion.
May import: zones, detector.video, detector.model, detector.evidence, detector.incidents, detector.audit."""
