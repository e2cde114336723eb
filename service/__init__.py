"""streetwatch service: ingest of alert records, case store and lifecycle, dispatch, pages, exports.

Run it with ``streetwatch serve [--host H] [--port P] [--db URL]`` or build the app with
``service.main.create_app(settings)``. Configuration: ``service.core.config.Settings``
(environment variables ``STREETWATCH_*``).

Layout (after the FastAPI full-stack template): ``main`` (app factory), ``core`` (config, db,
security, lifecycle, clock, metrics, SSRF policy), ``models`` (SQLAlchemy 2 ORM), ``schemas``
(pydantic in/out), ``crud`` (store operations), ``relay`` (webhook outbox relay), ``api`` (deps and
routes), ``migrations`` (Alembic, applied at start), ``templates`` + ``static`` (pages, no CDN).

Evidence: alert records name evidence files by a path relative to the audit directory and their
SHA-256. The service shows them from either source, uploads first:

* upload (any deployment, detectors on other machines): ``PUT /api/v1/evidence/{sha256}`` with the
  raw file (camera token); the server checks the hash and stores it in the database;
* an evidence root on the same machine: ``STREETWATCH_EVIDENCE_DIR=<audit --out DIR>``; paths are
  resolved inside it and never outside.

Cases serve their evidence at ``/api/v1/cases/{id}/evidence/{n}`` with the case's access rules.

This package never imports cv2, torch, ultralytics or detector; nothing outside it imports it.
"""
