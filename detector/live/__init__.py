"""Live room (``streetwatch run``): cameras analysed continuously, configs polled, records spooled and pushed.
May import: zones, detector.video, detector.model, detector.evidence, detector.incidents."""
