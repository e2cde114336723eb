"""Pure geometry and legality: camera config, zones, schedules, geolocation, grid cells, alert records.

This room imports neither `detector` nor `service` and never touches pixels or video.
"""
