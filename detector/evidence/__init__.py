"""Evidence room: snapshots and clips per alert, and the self-contained audit report with its template.
May import: zones (no other detector room)."""
