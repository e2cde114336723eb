"""Camera configs from the service (``--config-from URL``), polled in a thread (``ConfigFeed``).

The poller reads ``GET /api/v1/camera-configs`` every ``--config-poll-s`` and fetches each camera config
whose version changed; the analysis loop (``LiveRunner.apply_configs``) applies them between two batches:
a new camera starts, a changed one is reconfigured without a restart (``CameraRuntime.reconfigure``). A
config that fails validation here (e.g. a calibration whose points disagree, which the service cannot
check) is logged and the camera keeps its previous version. The last config fetched of each camera is
kept under ``--state-dir/configs``: a runner that starts while the service is unreachable runs those
and says so, else it waits, retrying with backoff. Relative file paths in a config from the service
are relative to the working directory.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from detector.live.push import ServiceClient
from zones.config import CameraConfig, format_loc
from zones.errors import ConfigError
from zones.geo import Geolocator

log = logging.getLogger("streetwatch.live")

DEFAULT_CONFIG_POLL_S = 30.0
CONFIGS_PATH = "/api/v1/camera-configs"
CONFIG_CACHE_DIR = "configs"


def camera_config_path(camera_id: str) -> str:
    return f"/api/v1/cameras/{camera_id}/config"


@dataclass(frozen=True)
class RemoteConfig:
    """One version of a camera's config, fetched from the service and validated here."""

    camera_id: str
    version: int
    config: CameraConfig


def config_from_service(data: Any, origin: str) -> CameraConfig:
    """A config fetched from the service, checked as ``load_camera_config`` checks a YAML file; every
    problem is a ConfigError naming ``origin`` and the field path."""
    if not isinstance(data, dict):
        raise ConfigError("not a camera config (expected a JSON object of fields)", file=origin)
    try:
        config = CameraConfig.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        loc = tuple(first.get("loc", ())) + tuple((first.get("ctx") or {}).get("sub_loc", ()))
        raise ConfigError(str(first.get("msg", "invalid value")), file=origin, field=format_loc(loc) or None) from None
    try:
        if config.calibration is not None:
            Geolocator.from_config(config)  # what the service cannot check without OpenCV
        config.grid_index()
    except ConfigError as error:
        raise ConfigError(error.reason, file=origin, field=error.field) from None
    source = config.resolve_source()
    if isinstance(source, str) and "://" not in source and not Path(source).is_file():
        raise ConfigError(f"source file {source!r} not found", file=origin, field="source")
    return config


class ConfigFeed:
    """The camera configs of this runner in the service (``--config-from``), polled in a thread.

    ``poll`` reads ``GET /api/v1/camera-configs`` and fetches each of its cameras (all listed, or only
    ``camera_ids``) whose version it has not seen; a valid one waits for ``take`` (the analysis loop)
    and is cached under ``cache_dir``, an invalid one is logged once and skipped. While the service is
    unreachable the polls back off (1, 2, 4 … s up to the poll interval) and say so once.
    """

    def __init__(
        self,
        client: ServiceClient,
        *,
        cache_dir: Path,
        camera_ids: Sequence[str] = (),
        poll_s: float = DEFAULT_CONFIG_POLL_S,
    ) -> None:
        self.client = client
        self.cache_dir = cache_dir
        self.camera_ids = list(dict.fromkeys(camera_ids))
        self.poll_s = poll_s
        self.versions: dict[str, int] = {}
        """Newest version seen of each camera (applied or refused): not fetched again."""
        self.failures = 0
        self._missing: set[str] = set()
        self._updates: dict[str, RemoteConfig] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return self.client.url(CONFIGS_PATH)

    def retry_in_s(self) -> float:
        """The next poll: the interval, or the backoff after failures."""
        if not self.failures:
            return self.poll_s
        return float(min(2.0 ** (self.failures - 1), max(self.poll_s, 1.0), 60.0))

    def poll(self) -> bool:
        """One round; True when the service answered the list."""
        listing = self.client.get_json(CONFIGS_PATH)
        items = listing.data.get("items") if listing.ok and isinstance(listing.data, dict) else None
        if not isinstance(items, list):
            self._failed(listing.status, listing.problem or "the answer has no items list")
            return False
        listed = {
            str(item["camera_id"]): int(item["version"])
            for item in items
            if isinstance(item, dict)
            and isinstance(item.get("camera_id"), str)
            and isinstance(item.get("version"), int)
        }
        if self.failures:
            log.info("config.reachable url=%s cameras=%d", self.url, len(listed))
        self.failures = 0
        for camera_id in self.camera_ids or sorted(listed):
            version = listed.get(camera_id)
            if version is None:
                if camera_id not in self._missing:
                    self._missing.add(camera_id)
                    log.warning("config.missing camera=%s (the service has no config for it yet; waiting)", camera_id)
                continue
            self._missing.discard(camera_id)
            if self.versions.get(camera_id) != version:
                self._fetch(camera_id)
        return True

    def _failed(self, status: int | None, problem: str) -> None:
        self.failures += 1
        if status in (401, 403):
            log.error(
                "config.auth_failed url=%s status=%s problem=%r (check --token: reading configs takes a camera, "
                "operator, supervisor or admin token)",
                self.url,
                status,
                problem,
            )
        elif self.failures == 1:
            log.warning(
                "config.unreachable url=%s problem=%r (retrying with backoff; running cameras keep their configs)",
                self.url,
                problem,
            )

    def _fetch(self, camera_id: str) -> None:
        origin = self.client.url(camera_config_path(camera_id))
        fetched = self.client.get_json(camera_config_path(camera_id))
        if not fetched.ok:
            log.warning("config.fetch_failed camera=%s problem=%r (tried again next poll)", camera_id, fetched.problem)
            return
        body = fetched.data
        version = body.get("version") if isinstance(body, dict) else None
        if not isinstance(body, dict) or not isinstance(version, int):
            log.error("config.invalid camera=%s error=%r", camera_id, f"{origin}: not a camera config answer")
            return
        self.versions[camera_id] = version
        try:
            config = config_from_service(body.get("config"), f"{origin}?version={version}")
            if config.id != camera_id:
                raise ConfigError(f"config of camera {config.id!r}", file=origin, field="id")
        except ConfigError as error:
            log.error(
                "config.invalid camera=%s version=%d error=%r (the camera keeps its previous config)",
                camera_id,
                version,
                str(error),
            )
            return
        self._cache(camera_id, version, body["config"])
        with self._lock:
            self._updates[camera_id] = RemoteConfig(camera_id, version, config)

    def _cache(self, camera_id: str, version: int, config: dict[str, Any]) -> None:
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            path = self.cache_dir / f"{camera_id}.json"
            part = path.with_name(path.name + ".part")
            part.write_text(json.dumps({"camera_id": camera_id, "version": version, "config": config}), "utf-8")
            os.replace(part, path)
        except OSError as error:
            log.warning("config.cache_failed camera=%s error=%r", camera_id, str(error))

    def cached(self) -> list[RemoteConfig]:
        """The last config fetched of each camera (``cache_dir``), for a start without the service."""
        found = []
        for path in sorted(self.cache_dir.glob("*.json")) if self.cache_dir.is_dir() else []:
            try:
                entry = json.loads(path.read_text("utf-8"))
                camera_id, version = str(entry["camera_id"]), int(entry["version"])
                config = config_from_service(entry["config"], str(path))
            except (OSError, ValueError, KeyError, TypeError, ConfigError) as error:
                log.warning("config.cache_unusable file=%s error=%r", path, str(error))
                continue
            if config.id == camera_id and (not self.camera_ids or camera_id in self.camera_ids):
                found.append(RemoteConfig(camera_id, version, config))
        return found

    def take(self) -> list[RemoteConfig]:
        """New versions since the last call (the newest of each camera)."""
        with self._lock:
            updates, self._updates = list(self._updates.values()), {}
        return updates

    def first(self, stop: threading.Event, *, wait: bool) -> list[RemoteConfig]:
        """The configs to start with. The service first; when it does not answer, the cached configs;
        without those and with ``wait``, poll with backoff until it answers (or ``stop``)."""
        attempt = 0
        while not stop.is_set():
            attempt += 1
            if self.poll():
                return self.take()
            if attempt == 1:
                cached = self.cached()
                for entry in cached:
                    self.versions[entry.camera_id] = entry.version
                    log.warning(
                        "config.cached camera=%s version=%d (the service does not answer: running the last config "
                        "fetched; newer versions are picked up once it does)",
                        entry.camera_id,
                        entry.version,
                    )
                if cached or not wait:
                    return cached
            delay = self.retry_in_s()
            log.warning(
                "config.waiting url=%s attempt=%d retry_in_s=%g (no camera to run until the service answers)",
                self.url,
                attempt,
                delay,
            )
            stop.wait(delay)
        return []

    def start(self, stop: threading.Event) -> None:
        def run() -> None:
            while not stop.wait(self.retry_in_s()):
                try:
                    self.poll()
                except Exception:  # a bug in one poll must not end config updates for the whole run
                    log.exception("config.poll_error")

        self._thread = threading.Thread(target=run, name="config-feed", daemon=True)
        self._thread.start()
