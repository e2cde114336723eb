"""Live room: continuous analysis of cameras, the disk spool and the HTTP push of records to the service.
May import: zones, detector.video, detector.model, detector.evidence, detector.incidents."""
