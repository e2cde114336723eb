/* Maps of the pages: cases, cameras (with their view direction) and zones.
   With a tile URL configured (STREETWATCH_TILE_URL) a Leaflet map on that basemap; without one the plain
   scale view (SVG). Positions are WGS84 everywhere; for a GCJ-02 basemap (STREETWATCH_TILE_GCJ02=1) they
   are shifted only when drawn, and clicks on it are shifted back. No CDN: Leaflet is /static/vendor/leaflet. */
"use strict";

const SWMap = (() => {
  const data = (typeof document !== "undefined" && document.body) ? document.body.dataset : {};
  const tiles = { url: data.tileUrl || "", attribution: data.tileAttribution || "", gcj02: data.tileGcj02 === "1" };

  /* WGS84 -> GCJ-02, the standard published transform (as in eviltransform / coordtransform): Krasovsky
     semi-major axis and eccentricity, offsets from the polynomial-and-sine series around (105°E, 35°N);
     outside China's rough bounding box there is no shift. */
  const A = 6378245.0;
  const EE = 0.00669342162296594323;
  const PI = Math.PI;

  function outOfChina(lon, lat) {
    return lon < 72.004 || lon > 137.8347 || lat < 0.8293 || lat > 55.8271;
  }

  function shiftLat(x, y) {
    let r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
    r += (20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0 / 3.0;
    r += (20.0 * Math.sin(y * PI) + 40.0 * Math.sin(y / 3.0 * PI)) * 2.0 / 3.0;
    r += (160.0 * Math.sin(y / 12.0 * PI) + 320.0 * Math.sin(y * PI / 30.0)) * 2.0 / 3.0;
    return r;
  }

  function shiftLon(x, y) {
    let r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
    r += (20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0 / 3.0;
    r += (20.0 * Math.sin(x * PI) + 40.0 * Math.sin(x / 3.0 * PI)) * 2.0 / 3.0;
    r += (150.0 * Math.sin(x / 12.0 * PI) + 300.0 * Math.sin(x / 30.0 * PI)) * 2.0 / 3.0;
    return r;
  }

  function wgs84ToGcj02(lon, lat) {
    if (outOfChina(lon, lat)) return [lon, lat];
    let dLat = shiftLat(lon - 105.0, lat - 35.0);
    let dLon = shiftLon(lon - 105.0, lat - 35.0);
    const radLat = lat / 180.0 * PI;
    const magic = 1 - EE * Math.sin(radLat) * Math.sin(radLat);
    const sqrtMagic = Math.sqrt(magic);
    dLat = (dLat * 180.0) / ((A * (1 - EE)) / (magic * sqrtMagic) * PI);
    dLon = (dLon * 180.0) / (A / sqrtMagic * Math.cos(radLat) * PI);
    return [lon + dLon, lat + dLat];
  }

  /* The inverse by fixed-point iteration: the shift varies slowly, so a few steps reach 1e-9°. */
  function gcj02ToWgs84(lon, lat) {
    let [x, y] = [lon, lat];
    for (let i = 0; i < 20; i++) {
      const [gx, gy] = wgs84ToGcj02(x, y);
      const dx = gx - lon, dy = gy - lat;
      x -= dx;
      y -= dy;
      if (Math.abs(dx) < 1e-10 && Math.abs(dy) < 1e-10) break;
    }
    return [x, y];
  }

  const toDisplay = ([lon, lat]) => (tiles.gcj02 ? wgs84ToGcj02(lon, lat) : [lon, lat]);
  const fromDisplay = ([lon, lat]) => (tiles.gcj02 ? gcj02ToWgs84(lon, lat) : [lon, lat]);
  const latLng = (lonlat) => { const [x, y] = toDisplay(lonlat); return L.latLng(y, x); };
  const lonLatOf = (ll) => fromDisplay([ll.lng, ll.lat]);

  if (typeof document === "undefined") {
    return { wgs84ToGcj02, gcj02ToWgs84, outOfChina };
  }
  const { el, svg } = SW;

  /* A Leaflet map: the configured basemap, or none (a plain background) with the scale bar either way. */
  function create(container, options = {}) {
    const map = L.map(container, { keyboard: true, maxZoom: 22, zoomSnap: 0.5, ...options });
    if (tiles.url) {
      // Leaflet writes the attribution as HTML: hand it text only.
      const text = el("span", { text: tiles.attribution }).innerHTML;
      L.tileLayer(tiles.url, { maxZoom: 22, maxNativeZoom: 19, attribution: text, crossOrigin: false }).addTo(map);
    } else {
      container.classList.add("plain");
    }
    L.control.scale({ imperial: false }).addTo(map);
    return map;
  }

  /* A camera icon: a dot, and the view direction as a wedge when the calibration gives one. */
  function cameraIcon(bearing) {
    const parts = [];
    if (bearing !== null && bearing !== undefined) {
      parts.push(svg("path", { class: "cone", d: "M20 20 L9 2 A21 21 0 0 1 31 2 Z", transform: "rotate(" + bearing + " 20 20)" }));
    }
    parts.push(svg("circle", { class: "body", cx: 20, cy: 20, r: 6 }));
    const node = svg("svg", { class: "camera-icon", viewBox: "0 0 40 40", width: 40, height: 40, "aria-hidden": "true" }, ...parts);
    return L.divIcon({ html: node, className: "sw-camera", iconSize: [40, 40], iconAnchor: [20, 20] });
  }

  // Leaflet writes string content as HTML; names come from cameras and operators, so hand it text nodes.
  const textNode = (text) => el("span", { text });
  const caseLabel = (p) => (SW.CATEGORY[p.category] || p.category) + " · " + p.zone + " · " + p.status;
  const cameraLabel = (p) => "摄像头 camera " + p.camera_id + (p.name && p.name !== p.camera_id ? " · " + p.name : "") +
    (p.bearing_deg !== null && p.bearing_deg !== undefined ? " · 朝向 view " + Math.round(p.bearing_deg) + "°" : "");
  const zoneLabel = (p) => "区域 zone " + p.zone + " · " + p.camera_id;

  /* The layers of one render on a Leaflet map. */
  function leafletLayers(map, { cases, cameras, zones, selected, onSelect }) {
    const group = L.featureGroup();
    for (const zone of zones) {
      const ring = zone.geometry.coordinates[0].slice(0, -1).map(latLng);
      const layer = L.polygon(ring, { className: "zone-area", interactive: true });
      layer.bindTooltip(textNode(zoneLabel(zone.properties)), { sticky: true });
      group.addLayer(layer);
    }
    for (const camera of cameras) {
      const p = camera.properties;
      const marker = L.marker(latLng(camera.geometry.coordinates), {
        icon: cameraIcon(p.bearing_deg), keyboard: true, title: cameraLabel(p), alt: cameraLabel(p),
      });
      marker.on("add", () => marker.getElement().setAttribute("data-camera", p.camera_id));
      group.addLayer(marker);
    }
    for (const feature of cases) {
      const p = feature.properties;
      const dot = L.circleMarker(latLng(feature.geometry.coordinates), {
        radius: feature.id === selected ? 9 : 6,
        className: "dot s-" + p.status + (p.overdue ? " late" : ""),
      });
      dot.bindTooltip(textNode(caseLabel(p)));
      dot.on("add", () => dot.getElement().setAttribute("data-id", feature.id));
      if (onSelect) dot.on("click", () => onSelect(feature.id));
      group.addLayer(dot);
    }
    return group;
  }

  /* Equirectangular projection around the features' mean latitude: fine at city scale. */
  function plain(container, { cases, cameras, zones, selected, onSelect }) {
    const W = 640, H = 300, PAD = 28;
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "map 地图" });
    root.append(svg("rect", { class: "ground", x: 0, y: 0, width: W, height: H }));
    const points = [
      ...cases.map((f) => f.geometry.coordinates),
      ...cameras.map((f) => f.geometry.coordinates),
      ...zones.flatMap((f) => f.geometry.coordinates[0]),
    ];
    if (!points.length) {
      root.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "muted", text: "no cases on the map" }));
      container.replaceChildren(root);
      return;
    }
    const lons = points.map((c) => c[0]);
    const lats = points.map((c) => c[1]);
    const lat0 = (Math.min(...lats) + Math.max(...lats)) / 2;
    const k = Math.cos((lat0 * Math.PI) / 180);
    const minX = Math.min(...lons) * k, maxX = Math.max(...lons) * k;
    const minY = Math.min(...lats), maxY = Math.max(...lats);
    const span = Math.max(maxX - minX, maxY - minY, 0.0005);
    const scale = Math.min((W - 2 * PAD) / Math.max(maxX - minX, span / 2), (H - 2 * PAD) / Math.max(maxY - minY, span / 2));
    const cx = (minX + maxX) / 2, cy = (minY + maxY) / 2;
    const project = ([lon, lat]) => [W / 2 + (lon * k - cx) * scale, H / 2 - (lat - cy) * scale];
    // Scale bar: a round number of metres about a fifth of the width.
    const metresPerPx = 111320 / scale;
    const nice = [10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000].find((m) => m / metresPerPx > W / 8) || 10000;
    const barPx = nice / metresPerPx;
    root.append(svg("line", { class: "scale", x1: 12, y1: H - 12, x2: 12 + barPx, y2: H - 12 }),
      svg("text", { class: "small", x: 12, y: H - 18, text: nice >= 1000 ? nice / 1000 + " km" : nice + " m" }));
    for (const zone of zones) {
      const ring = zone.geometry.coordinates[0].map(project).map(([x, y]) => x.toFixed(1) + "," + y.toFixed(1)).join(" ");
      root.append(svg("polygon", { class: "zone-area", points: ring, "data-zone": zone.properties.zone },
        svg("title", { text: zoneLabel(zone.properties) })));
    }
    for (const camera of cameras) {
      const p = camera.properties;
      const [x, y] = project(camera.geometry.coordinates);
      const g = svg("g", { class: "camera", transform: `translate(${x.toFixed(1)} ${y.toFixed(1)})`, "data-camera": p.camera_id },
        svg("title", { text: cameraLabel(p) }));
      if (p.bearing_deg !== null && p.bearing_deg !== undefined) {
        g.append(svg("path", { class: "cone", d: "M0 0 L-8 -16 A18 18 0 0 1 8 -16 Z", transform: "rotate(" + p.bearing_deg + ")" }));
      }
      g.append(svg("rect", { class: "body", x: -5, y: -5, width: 10, height: 10, rx: 2 }));
      root.append(g);
    }
    for (const feature of cases) {
      const [x, y] = project(feature.geometry.coordinates);
      const p = feature.properties;
      const dot = svg("circle", {
        cx: x.toFixed(1), cy: y.toFixed(1), r: feature.id === selected ? 9 : 6,
        class: "dot s-" + p.status + (p.overdue ? " late" : ""), "data-id": feature.id,
        onclick: onSelect ? () => onSelect(feature.id) : null,
      }, svg("title", { text: caseLabel(p) }));
      root.append(dot);
    }
    container.replaceChildren(root);
  }

  /* Draws cases (GeoJSON point features with status/category/zone), cameras and zones (features of
     /api/v1/cameras.geojson) into ``container``: on the basemap when one is configured, else plain. */
  function render(container, layers) {
    const input = { cases: [], cameras: [], zones: [], selected: null, onSelect: null, ...layers };
    if (!tiles.url) {
      plain(container, input);
      return;
    }
    let state = container.swMap;
    if (!state) {
      container.replaceChildren();
      container.classList.add("tiled");
      state = container.swMap = { map: create(container), group: null, touched: false };
      state.map.setView([0, 0], 2);
      // Until the user pans or zooms, each render shows everything; after that the view is theirs.
      for (const type of ["pointerdown", "wheel", "keydown"]) {
        container.addEventListener(type, () => { state.touched = true; }, { passive: true });
      }
    }
    if (state.group) state.map.removeLayer(state.group);
    state.group = leafletLayers(state.map, input).addTo(state.map);
    if (!state.touched && state.group.getLayers().length) {
      state.map.fitBounds(state.group.getBounds().pad(0.2), { maxZoom: 19, animate: false });
    }
  }

  /* Cameras and zones of /api/v1/cameras.geojson, split by kind. */
  async function loadCameras() {
    const collection = await SW.api("/api/v1/cameras.geojson");
    return {
      cameras: collection.features.filter((f) => f.properties.kind === "camera"),
      zones: collection.features.filter((f) => f.properties.kind === "zone"),
    };
  }

  return { tiles, wgs84ToGcj02, gcj02ToWgs84, outOfChina, latLng, lonLatOf, create, cameraIcon, textNode, render, loadCameras };
})();

if (typeof module !== "undefined") module.exports = SWMap;
