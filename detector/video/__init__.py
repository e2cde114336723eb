"""Video room: frame sources (file, RTSP/HTTP, webcam, folder), decoding, prefetch, frame skip, stream health.
May import: zones (no other detector room)."""
