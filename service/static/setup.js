/* Camera setup: zones, exclude masks and calibration points drawn on the camera's latest snapshot, the
   live ground preview on the map (POST …/config/preview: zones/geo.py, as the detector computes it), and
   Save as the camera config (PUT …/config, DESIGN §3.2). Geometry is kept in snapshot pixels here and
   written back in the config's own units (relative fractions, or pixels of frame_size). */
"use strict";

(() => {
  const { el, svg, CATEGORY } = SW;
  const cameraId = document.body.dataset.camera;
  const apiBase = "/api/v1/cameras/" + encodeURIComponent(cameraId);
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";
  const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
  const DAY_LABEL = { mon: "一 Mon", tue: "二 Tue", wed: "三 Wed", thu: "四 Thu", fri: "五 Fri", sat: "六 Sat", sun: "日 Sun" };
  const ANCHOR = {
    "": "默认 default (by object class)",
    bottom_center: "底边中点 bottom centre",
    center: "中心 centre",
    overlap: "重叠 overlap",
  };
  const DEFAULT_SIZE = [1280, 720];
  // Top-level config keys this page edits; any other key of a loaded config is written back unchanged.
  const MANAGED = new Set(["id", "name", "source", "timezone", "location", "view_radius_m", "grid", "calibration", "zones", "exclude", "frame_size"]);
  const ZONE_KEYS = new Set(["name", "polygon", "relative", "categories", "dwell_s", "anchor", "min_overlap", "allowed", "responsible", "remind_first_s"]);

  const form = document.getElementById("config-form");
  const stage = document.getElementById("stage");
  const img = document.getElementById("snapshot");
  const overlay = document.getElementById("overlay");
  const modeLine = document.getElementById("mode");
  const zonesBox = document.getElementById("zones");
  const masksBox = document.getElementById("masks");
  const pointsBody = document.querySelector("#points tbody");
  const summary = document.getElementById("preview-summary");
  const problemsList = document.getElementById("preview-problems");
  const errorsBox = document.getElementById("errors");
  const saveStatus = document.getElementById("save-status");
  const buttons = {
    zone: document.getElementById("add-zone"),
    mask: document.getElementById("add-mask"),
    point: document.getElementById("add-point"),
    finish: document.getElementById("finish"),
    cancel: document.getElementById("cancel"),
    reload: document.getElementById("reload-snapshot"),
    location: document.getElementById("pick-location"),
    grid: document.getElementById("show-grid"),
  };
  document.getElementById("yaml-link").href = apiBase + "/config.yaml";

  const state = {
    version: null,
    loaded: {},
    size: null, // snapshot [w, h] once loaded
    frameSize: null, // the config's frame_size (units of calibration px and pixel polygons)
    zones: [], // {name, polygon: [[x, y] snapshot px], relative, categories, dwell_s, anchor, min_overlap, allowed, extra}
    masks: [], // {polygon, relative, extra}
    points: [], // {px: [x, y] snapshot px | null, lon, lat}
    active: null, // {kind: "zone" | "mask", index}: the polygon whose vertices are shown
    vertex: null, // selected vertex of the active polygon
    selectedPoint: null,
    mode: null, // {type: "draw", kind, vertices} | {type: "pixel", index} | {type: "map", index} | {type: "location"}
    cursor: null, // keyboard cursor on the snapshot
    errors: [], // problems of the last save: {path: [...], field, msg}
    preview: null,
    previewPoints: [], // preview point index -> table index
  };

  const stageSize = () => state.size || state.frameSize || DEFAULT_SIZE;
  const round = (v, digits) => { const f = 10 ** digits; return Math.round(v * f) / f; };
  const clamp = (v, lo, hi) => Math.min(Math.max(v, lo), hi);
  const num = (text) => {
    const value = String(text).trim().replace(/，/g, ",");
    if (value === "") return null;
    const n = Number(value);
    return Number.isFinite(n) ? n : NaN;
  };
  const field = (name) => form.elements.namedItem(name);

  /* ---- units: snapshot pixels <-> the config's ------------------------------------------------ */

  function toStage(p, relative) {
    const [w, h] = stageSize();
    if (relative) return [p[0] * w, p[1] * h];
    const fs = state.frameSize;
    return fs ? [p[0] * w / fs[0], p[1] * h / fs[1]] : [p[0], p[1]];
  }

  function fromStage(p, relative) {
    const [w, h] = stageSize();
    if (relative) return [round(clamp(p[0] / w, 0, 1), 5), round(clamp(p[1] / h, 0, 1), 5)];
    const fs = state.frameSize;
    const [x, y] = fs ? [p[0] * fs[0] / w, p[1] * fs[1] / h] : p;
    return [round(Math.max(x, 0), 1), round(Math.max(y, 0), 1)];
  }

  /* ---- config <-> page ---------------------------------------------------------------------- */

  function applyConfig(config) {
    state.loaded = config || {};
    const c = state.loaded;
    state.frameSize = Array.isArray(c.frame_size) && c.frame_size.length === 2 ? c.frame_size.map(Number) : null;
    field("name").value = c.name || "";
    field("source").value = c.source === undefined || c.source === null ? "" : String(c.source);
    field("timezone").value = c.timezone || "Asia/Shanghai";
    field("cam_lon").value = c.location ? String(c.location.lon) : "";
    field("cam_lat").value = c.location ? String(c.location.lat) : "";
    field("view_radius_m").value = c.view_radius_m !== undefined ? String(c.view_radius_m) : "";
    field("grid_code").value = c.grid ? c.grid.code : "";
    field("grid_team").value = c.grid ? c.grid.team : "";
    const calibration = c.calibration || {};
    field("max_reprojection_error_m").value = calibration.max_reprojection_error_m !== undefined ? String(calibration.max_reprojection_error_m) : "";
    applyGeometry(c);
  }

  function applyGeometry(c) {
    state.zones = (c.zones || []).map((z) => {
      const relative = z.relative !== false;
      const extra = Object.fromEntries(Object.entries(z).filter(([k]) => !ZONE_KEYS.has(k)));
      return {
        name: z.name || "", polygon: (z.polygon || []).map((p) => toStage(p, relative)), relative,
        categories: [...(z.categories || [])], dwell_s: z.dwell_s ?? null, anchor: z.anchor || "",
        min_overlap: z.min_overlap ?? null,
        unit: (z.responsible || {}).unit || "", unitName: (z.responsible || {}).name || "", remind_first_s: z.remind_first_s ?? null,
        allowed: (z.allowed || []).map((w) => ({ days: [...(w.days || [])], from: w.from || "", to: w.to || "" })), extra,
      };
    });
    state.masks = (c.exclude || []).map((m) => {
      const relative = m.relative !== false;
      const extra = Object.fromEntries(Object.entries(m).filter(([k]) => k !== "polygon" && k !== "relative"));
      return { polygon: (m.polygon || []).map((p) => toStage(p, relative)), relative, extra };
    });
    state.points = ((c.calibration || {}).points || []).map((p) => ({ px: toStage(p.px, false), lon: p.lon, lat: p.lat }));
    state.active = null;
    state.vertex = null;
    renderAll();
  }

  function zoneConfig(z) {
    const out = { ...z.extra, name: z.name, polygon: z.polygon.map((p) => fromStage(p, z.relative)), relative: z.relative, categories: [...z.categories] };
    if (z.dwell_s !== null && z.dwell_s !== "") out.dwell_s = z.dwell_s;
    if (z.anchor) out.anchor = z.anchor;
    if (z.anchor === "overlap" && z.min_overlap !== null && z.min_overlap !== "") out.min_overlap = z.min_overlap;
    if (z.allowed.length) out.allowed = z.allowed.map((w) => ({ days: [...w.days], from: w.from, to: w.to }));
    // Remind first (门前三包): both parts of the unit are sent once either is filled, so a missing one is
    // named by the server's check rather than dropped here.
    if (z.unit.trim() || z.unitName.trim()) out.responsible = { unit: z.unit.trim(), name: z.unitName.trim() };
    if (z.remind_first_s !== null && z.remind_first_s !== "") out.remind_first_s = z.remind_first_s;
    return out;
  }

  /* The config as the page shows it. For the preview, calibration points still being placed are left out
     (state.previewPoints maps the preview's indices back to the table's). */
  function toConfig(forPreview) {
    const out = {};
    for (const [key, value] of Object.entries(state.loaded)) if (!MANAGED.has(key)) out[key] = value;
    out.id = cameraId;
    out.name = field("name").value.trim();
    const source = field("source").value.trim();
    out.source = /^\d+$/.test(source) ? Number(source) : source;
    out.timezone = field("timezone").value.trim();
    out.location = { lon: num(field("cam_lon").value), lat: num(field("cam_lat").value) };
    const radius = num(field("view_radius_m").value);
    if (radius !== null) out.view_radius_m = radius;
    const code = field("grid_code").value.trim(), team = field("grid_team").value.trim();
    if (code || team) out.grid = { code, team };
    const indices = [];
    const points = [];
    state.points.forEach((p, i) => {
      const complete = p.px && Number.isFinite(p.lon) && Number.isFinite(p.lat);
      if (forPreview && !complete) return;
      indices.push(i);
      points.push({ px: p.px ? fromStage(p.px, false) : null, lon: p.lon, lat: p.lat });
    });
    if (forPreview) state.previewPoints = indices;
    const maxError = num(field("max_reprojection_error_m").value);
    if (points.length || maxError !== null) {
      const { points: _old, max_reprojection_error_m: _max, ...rest } = state.loaded.calibration || {};
      out.calibration = { ...rest, points };
      if (maxError !== null) out.calibration.max_reprojection_error_m = maxError;
    }
    out.zones = state.zones.map(zoneConfig);
    out.exclude = state.masks.map((m) => ({ ...m.extra, polygon: m.polygon.map((p) => fromStage(p, m.relative)), relative: m.relative }));
    const frameSize = state.frameSize || state.size;
    if (frameSize) out.frame_size = frameSize;
    return out;
  }

  /* ---- the snapshot stage ------------------------------------------------------------------- */

  function viewboxPerPixel() {
    const rect = overlay.getBoundingClientRect();
    return rect.width > 0 ? stageSize()[0] / rect.width : 1;
  }

  function toStagePoint(event) {
    const rect = overlay.getBoundingClientRect();
    const [w, h] = stageSize();
    return [clamp((event.clientX - rect.left) * w / rect.width, 0, w), clamp((event.clientY - rect.top) * h / rect.height, 0, h)];
  }

  const activePolygon = () => {
    if (!state.active) return null;
    const list = state.active.kind === "zone" ? state.zones : state.masks;
    return list[state.active.index] || null;
  };
  const invalidZones = () => new Set(state.errors.filter((e) => e.path[0] === "zones" && Number.isInteger(e.path[1])).map((e) => e.path[1]));
  const pts = (polygon) => polygon.map(([x, y]) => round(x, 1) + "," + round(y, 1)).join(" ");

  function focusKey() {
    const node = document.activeElement;
    if (!node || !overlay.contains(node) || node === overlay) return null;
    for (const key of ["vertex", "mid", "point"]) if (node.dataset[key] !== undefined) return [key, node.dataset[key]];
    return null;
  }

  function drawStage() {
    const [w, h] = stageSize();
    const k = viewboxPerPixel();
    const r = 7 * k;
    const keep = focusKey();
    overlay.setAttribute("viewBox", `0 0 ${w} ${h}`);
    overlay.classList.toggle("editing", state.mode !== null);
    const nodes = [];
    const preview = state.preview;
    if (buttons.grid.checked && preview && preview.grid.length) {
      nodes.push(svg("g", { class: "ground-grid" }, ...preview.grid.map((line) => svg("polyline", { points: pts(line) }))));
    }
    state.masks.forEach((m, i) => {
      const active = state.active && state.active.kind === "mask" && state.active.index === i;
      nodes.push(svg("polygon", { class: "mask" + (active ? " active" : ""), points: pts(m.polygon), "data-kind": "mask", "data-index": i },
        svg("title", { text: "屏蔽区 exclude mask " + (i + 1) })));
    });
    const invalid = invalidZones();
    state.zones.forEach((z, i) => {
      const active = state.active && state.active.kind === "zone" && state.active.index === i;
      const cls = "zone" + (active ? " active" : "") + (invalid.has(i) ? " invalid" : "");
      nodes.push(svg("polygon", { class: cls, points: pts(z.polygon), "data-kind": "zone", "data-index": i }, svg("title", { text: "区域 zone " + z.name })));
      if (z.polygon.length) {
        const top = z.polygon.reduce((a, b) => (b[1] < a[1] ? b : a));
        nodes.push(svg("text", { class: "zone-name", x: round(top[0], 1), y: round(Math.max(top[1] - 6 * k, 14 * k), 1), "font-size": round(13 * k, 1), text: z.name }));
      }
    });
    state.points.forEach((p, i) => {
      if (!p.px) return;
      const done = Number.isFinite(p.lon) && Number.isFinite(p.lat);
      nodes.push(svg("g", {
        class: "cal" + (done ? "" : " pending") + (state.selectedPoint === i ? " selected" : ""), tabindex: 0, "data-point": i,
        role: "button", "aria-label": "标定点 calibration point " + (i + 1) + " at " + Math.round(p.px[0]) + ", " + Math.round(p.px[1]),
      },
      svg("circle", { cx: round(p.px[0], 1), cy: round(p.px[1], 1), r: round(r * 1.2, 2) }),
      svg("text", { x: round(p.px[0] + r * 1.6, 1), y: round(p.px[1] - r * 1.2, 1), "font-size": round(13 * k, 1), text: String(i + 1) })));
    });
    const polygon = activePolygon();
    if (polygon && !state.mode) {
      const n = polygon.polygon.length;
      polygon.polygon.forEach((a, i) => {
        const b = polygon.polygon[(i + 1) % n];
        nodes.push(svg("circle", { class: "mid", cx: round((a[0] + b[0]) / 2, 1), cy: round((a[1] + b[1]) / 2, 1), r: round(r * 0.7, 2),
          tabindex: 0, "data-mid": i, role: "button", "aria-label": "add a vertex after vertex " + (i + 1) + " 在此加顶点" }));
      });
      polygon.polygon.forEach((p, i) => {
        nodes.push(svg("circle", { class: "handle" + (state.vertex === i ? " selected" : ""), cx: round(p[0], 1), cy: round(p[1], 1), r: round(r, 2),
          tabindex: 0, "data-vertex": i, role: "button",
          "aria-label": "vertex 顶点 " + (i + 1) + " of " + n + " at " + Math.round(p[0]) + ", " + Math.round(p[1]) }));
      });
    }
    if (state.mode && state.mode.type === "draw") {
      const v = state.mode.vertices;
      const line = state.cursor ? [...v, state.cursor] : v;
      nodes.push(svg("polyline", { class: "drawing " + state.mode.kind, points: pts(line) }));
      v.forEach((p, i) => nodes.push(svg("circle", { class: "handle drawn" + (i === 0 && v.length >= 3 ? " closes" : ""), cx: round(p[0], 1), cy: round(p[1], 1), r: round(r, 2) })));
    }
    if (state.cursor && (document.activeElement === overlay || state.mode)) {
      const [x, y] = state.cursor;
      nodes.push(svg("g", { class: "cursor" },
        svg("line", { x1: round(x - 3 * r, 1), y1: round(y, 1), x2: round(x + 3 * r, 1), y2: round(y, 1) }),
        svg("line", { x1: round(x, 1), y1: round(y - 3 * r, 1), x2: round(x, 1), y2: round(y + 3 * r, 1) })));
    }
    overlay.replaceChildren(...nodes);
    if (keep) {
      const again = overlay.querySelector(`[data-${keep[0]}="${keep[1]}"]`);
      if (again) again.focus({ preventScroll: true });
    }
  }

  /* ---- modes: drawing a polygon, picking a point's pixel or place ---------------------------------- */

  const MODE_TEXT = {
    zone: "画区域 Drawing a zone: click its corners on the snapshot (or arrow keys + Space); Finish or Enter closes it, Escape cancels.",
    mask: "画屏蔽区 Drawing an exclude mask: click its corners; Finish or Enter closes it, Escape cancels.",
    pixel: "标定点 Calibration point {n}: click its pixel on the snapshot (or arrow keys + Space).",
    map: "标定点 Calibration point {n}: click its place on the map (or Enter at the map's centre +), or type its lon/lat.",
    location: "摄像头位置 Camera position: click it on the map (or Enter at the map's centre +).",
  };

  function setMode(mode) {
    state.mode = mode;
    const type = mode ? (mode.type === "draw" ? mode.kind : mode.type) : null;
    modeLine.textContent = type ? MODE_TEXT[type].replace("{n}", mode.index !== undefined ? String(mode.index + 1) : "") : "";
    modeLine.classList.toggle("on", Boolean(type));
    buttons.finish.hidden = !(mode && mode.type === "draw");
    buttons.cancel.hidden = !mode;
    document.getElementById("setup-map").classList.toggle("picking", Boolean(mode && (mode.type === "map" || mode.type === "location")));
    drawStage();
  }

  function startDrawing(kind) {
    if (state.mode && state.mode.type === "draw") finishDrawing();
    state.active = null;
    state.vertex = null;
    setMode({ type: "draw", kind, vertices: [] });
    overlay.focus({ preventScroll: true });
  }

  function uniqueZoneName() {
    const names = new Set(state.zones.map((z) => z.name));
    let n = state.zones.length + 1;
    while (names.has("zone-" + n)) n += 1;
    return "zone-" + n;
  }

  function finishDrawing() {
    const mode = state.mode;
    if (!mode || mode.type !== "draw") return;
    if (mode.vertices.length < 3) {
      modeLine.textContent = "至少 3 个顶点 A polygon needs at least 3 points. " + MODE_TEXT[mode.kind];
      return;
    }
    const polygon = mode.vertices.map((p) => [...p]);
    let focusName = false;
    if (mode.kind === "zone") {
      state.zones.push({ name: uniqueZoneName(), polygon, relative: true, categories: ["street_vending"], dwell_s: null, anchor: "", min_overlap: null, unit: "", unitName: "", remind_first_s: null, allowed: [], extra: {} });
      state.active = { kind: "zone", index: state.zones.length - 1 };
      focusName = true;
    } else {
      state.masks.push({ polygon, relative: true, extra: {} });
      state.active = { kind: "mask", index: state.masks.length - 1 };
    }
    setMode(null);
    renderAll();
    schedulePreview();
    if (focusName) zonesBox.querySelector(`[data-index="${state.zones.length - 1}"] input[name=zone-name]`).focus();
  }

  function cancelMode() {
    if (state.mode && state.mode.type === "pixel") {
      const p = state.points[state.mode.index];
      if (p && !p.px && !Number.isFinite(p.lon)) { state.points.splice(state.mode.index, 1); renderPoints(); }
    }
    setMode(null);
  }

  function addPoint() {
    if (state.mode && state.mode.type === "draw") finishDrawing();
    state.points.push({ px: null, lon: null, lat: null });
    renderPoints();
    pickPixel(state.points.length - 1);
  }

  function pickPixel(index) {
    state.selectedPoint = index;
    setMode({ type: "pixel", index });
    overlay.focus({ preventScroll: true });
  }

  function setPointPixel(index, p) {
    const point = state.points[index];
    point.px = [round(p[0], 1), round(p[1], 1)];
    clearErrors(["calibration", "points", index]);
    renderPoints();
    if (!(Number.isFinite(point.lon) && Number.isFinite(point.lat))) {
      setMode({ type: "map", index });
      const input = pointsBody.querySelector(`tr[data-index="${index}"] input[name=lon]`);
      if (input) input.focus();
    } else {
      setMode(null);
    }
    schedulePreview();
  }

  function setPointPlace(index, [lon, lat]) {
    const point = state.points[index];
    point.lon = round(lon, 8);
    point.lat = round(lat, 8);
    clearErrors(["calibration", "points", index]);
    renderPoints();
    if (state.mode && state.mode.type === "map" && state.mode.index === index) setMode(null);
    schedulePreview();
  }

  function setLocation([lon, lat]) {
    field("cam_lon").value = String(round(lon, 7));
    field("cam_lat").value = String(round(lat, 7));
    clearErrors(["location"]);
    if (state.mode && state.mode.type === "location") setMode(null);
    schedulePreview();
  }

  /* ---- pointer and keyboard on the snapshot ---------------------------------------------------- */

  let drag = null;
  let lastDown = null; // the last vertex pressed and when, to tell a double click

  overlay.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    const p = toStagePoint(event);
    const mode = state.mode;
    if (mode && mode.type === "draw") {
      event.preventDefault();
      const v = mode.vertices;
      const r = 7 * viewboxPerPixel();
      if (v.length >= 3 && Math.hypot(p[0] - v[0][0], p[1] - v[0][1]) <= r * 1.5) finishDrawing();
      else { v.push(p); drawStage(); }
      return;
    }
    if (mode && mode.type === "pixel") {
      event.preventDefault();
      setPointPixel(mode.index, p);
      return;
    }
    const target = event.target.closest("[data-vertex], [data-mid], [data-point], [data-kind]");
    if (!target) return;
    const polygon = activePolygon();
    if (target.dataset.vertex !== undefined && polygon) {
      const index = Number(target.dataset.vertex);
      // A double click deletes the vertex. Counted here rather than with "dblclick": the handles are
      // redrawn between the two clicks, and the browser fires dblclick only on one and the same node.
      const now = event.timeStamp;
      if (lastDown && lastDown.index === index && now - lastDown.at < 450) {
        lastDown = null;
        event.preventDefault();
        deleteVertex(index);
        return;
      }
      lastDown = { index, at: now };
      state.vertex = index;
      drag = { type: "vertex", index: state.vertex, moved: false };
    } else if (target.dataset.mid !== undefined && polygon) {
      const at = Number(target.dataset.mid) + 1;
      polygon.polygon.splice(at, 0, p);
      state.vertex = at;
      drag = { type: "vertex", index: at, moved: true };
    } else if (target.dataset.point !== undefined) {
      state.selectedPoint = Number(target.dataset.point);
      drag = { type: "point", index: state.selectedPoint, moved: false };
      renderPoints();
    } else if (target.dataset.kind) {
      activate(target.dataset.kind, Number(target.dataset.index));
      return;
    }
    event.preventDefault();
    overlay.setPointerCapture(event.pointerId);
    drawStage();
    const handle = overlay.querySelector(drag.type === "vertex" ? `[data-vertex="${drag.index}"]` : `[data-point="${drag.index}"]`);
    if (handle) handle.focus({ preventScroll: true });
  });

  overlay.addEventListener("pointermove", (event) => {
    if (!drag) {
      if (state.mode && (state.mode.type === "draw" || state.mode.type === "pixel") && event.pointerType === "mouse") {
        state.cursor = toStagePoint(event);
        drawStage();
      }
      return;
    }
    event.preventDefault();
    const p = toStagePoint(event);
    drag.moved = true;
    if (drag.type === "vertex") activePolygon().polygon[drag.index] = p;
    else state.points[drag.index].px = [round(p[0], 1), round(p[1], 1)];
    drawStage();
  });

  function endDrag() {
    if (!drag) return;
    const moved = drag.moved;
    const kind = drag.type;
    drag = null;
    if (moved) {
      if (kind === "vertex") geometryChanged();
      else { renderPoints(); schedulePreview(); }
    }
  }
  overlay.addEventListener("pointerup", endDrag);
  overlay.addEventListener("pointercancel", endDrag);

  function deleteVertex(index) {
    const polygon = activePolygon();
    if (!polygon) return;
    if (polygon.polygon.length <= 3) {
      modeLine.textContent = "至少保留 3 个顶点 A polygon keeps at least 3 points; delete the whole zone instead.";
      return;
    }
    polygon.polygon.splice(index, 1);
    state.vertex = null;
    geometryChanged();
  }

  overlay.addEventListener("dblclick", (event) => event.preventDefault()); // no text selection; see pointerdown
  overlay.addEventListener("contextmenu", (event) => {
    const target = event.target.closest("[data-vertex]");
    if (target && !state.mode) { event.preventDefault(); deleteVertex(Number(target.dataset.vertex)); }
  });

  const ARROWS = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };

  overlay.addEventListener("keydown", (event) => {
    const [w, h] = stageSize();
    const arrow = ARROWS[event.key];
    const step = event.ctrlKey || event.metaKey ? 1 : Math.max(1, Math.round(Math.max(w, h) / 100)) * (event.shiftKey ? 5 : 1);
    const move = (p) => [clamp(p[0] + arrow[0] * step, 0, w), clamp(p[1] + arrow[1] * step, 0, h)];
    const target = event.target;
    const polygon = activePolygon();
    let handled = true;
    if (target.dataset && target.dataset.vertex !== undefined && polygon && !state.mode) {
      const index = Number(target.dataset.vertex);
      state.vertex = index;
      if (arrow) { polygon.polygon[index] = move(polygon.polygon[index]); geometryChanged(); }
      else if (event.key === "Delete" || event.key === "Backspace") deleteVertex(index);
      else if (event.key === "Escape") overlay.focus();
      else handled = false;
    } else if (target.dataset && target.dataset.mid !== undefined && polygon && !state.mode) {
      if (event.key === "Enter" || event.key === " ") {
        const i = Number(target.dataset.mid);
        const a = polygon.polygon[i], b = polygon.polygon[(i + 1) % polygon.polygon.length];
        polygon.polygon.splice(i + 1, 0, [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2]);
        state.vertex = i + 1;
        geometryChanged();
        const handle = overlay.querySelector(`[data-vertex="${i + 1}"]`);
        if (handle) handle.focus();
      } else handled = false;
    } else if (target.dataset && target.dataset.point !== undefined && !state.mode) {
      const index = Number(target.dataset.point);
      const point = state.points[index];
      if (arrow) { point.px = move(point.px).map((v) => round(v, 1)); drawStage(); renderPoints(); schedulePreview(); }
      else handled = false;
    } else if (target === overlay) {
      const mode = state.mode;
      if (arrow) {
        state.cursor = move(state.cursor || [w / 2, h / 2]);
        drawStage();
      } else if (event.key === " " || event.key === "Enter") {
        const cursor = state.cursor || [w / 2, h / 2];
        if (mode && mode.type === "draw") {
          if (event.key === "Enter" && mode.vertices.length >= 3) finishDrawing();
          else { mode.vertices.push([...cursor]); state.cursor = cursor; drawStage(); }
        } else if (mode && mode.type === "pixel") {
          setPointPixel(mode.index, cursor);
        } else handled = false;
      } else if (event.key === "Backspace" && mode && mode.type === "draw") {
        mode.vertices.pop();
        drawStage();
      } else if (event.key === "Escape" && mode) {
        cancelMode();
      } else handled = false;
    } else handled = false;
    if (handled) event.preventDefault();
  });
  overlay.addEventListener("focus", () => drawStage());
  overlay.addEventListener("blur", () => setTimeout(() => { if (!overlay.contains(document.activeElement)) drawStage(); }, 0));

  function activate(kind, index) {
    state.active = { kind, index };
    state.vertex = null;
    drawStage();
    for (const node of document.querySelectorAll(".item")) node.classList.toggle("active", node.dataset.kind === kind && Number(node.dataset.index) === index);
  }

  function geometryChanged() {
    if (state.active) clearErrors([state.active.kind === "zone" ? "zones" : "exclude", state.active.index]);
    drawStage();
    renderCounts();
    schedulePreview();
  }

  /* ---- the side panel: zones, masks, calibration table --------------------------------------- */

  const slot = (path) => el("p", { class: "field-error", "data-error-for": path });

  function zoneItem(z, i) {
    const path = "zones." + i;
    const name = el("input", { name: "zone-name", value: z.name, maxlength: 128, "data-path": path + ".name", "aria-label": "zone name 区域名称" });
    name.addEventListener("input", () => { z.name = name.value; clearErrors(["zones", i]); drawStage(); schedulePreview(); });
    const categories = Object.entries(CATEGORY).map(([value, text]) => {
      const box = el("input", { type: "checkbox", name: "category", value, checked: z.categories.includes(value) });
      box.addEventListener("change", () => {
        z.categories = [...item.querySelectorAll("input[name=category]:checked")].map((b) => b.value);
        clearErrors(["zones", i]);
        schedulePreview();
      });
      return el("label", { class: "check" }, box, " ", text);
    });
    const dwell = el("input", { name: "dwell_s", inputmode: "decimal", size: 6, value: z.dwell_s ?? "", placeholder: "默认 default", "data-path": path + ".dwell_s" });
    dwell.addEventListener("input", () => { z.dwell_s = num(dwell.value); clearErrors(["zones", i]); schedulePreview(); });
    const anchor = el("select", { name: "anchor", "data-path": path + ".anchor" },
      ...Object.entries(ANCHOR).map(([value, text]) => el("option", { value, text, selected: value === z.anchor })));
    const overlap = el("input", { name: "min_overlap", inputmode: "decimal", size: 4, value: z.min_overlap ?? "", placeholder: "0.5", "data-path": path + ".min_overlap" });
    const overlapLabel = el("label", { hidden: z.anchor !== "overlap" }, "最小重叠 min overlap ", overlap);
    anchor.addEventListener("change", () => { z.anchor = anchor.value; overlapLabel.hidden = z.anchor !== "overlap"; clearErrors(["zones", i]); schedulePreview(); });
    overlap.addEventListener("input", () => { z.min_overlap = num(overlap.value); clearErrors(["zones", i]); schedulePreview(); });
    const unit = el("input", { name: "responsible-unit", value: z.unit, size: 12, maxlength: 64, placeholder: "shop-0127", "data-path": path + ".responsible.unit" });
    unit.addEventListener("input", () => { z.unit = unit.value; clearErrors(["zones", i]); schedulePreview(); });
    const unitName = el("input", { name: "responsible-name", value: z.unitName, size: 12, maxlength: 128, placeholder: "张记水果店", "data-path": path + ".responsible.name" });
    unitName.addEventListener("input", () => { z.unitName = unitName.value; clearErrors(["zones", i]); schedulePreview(); });
    const remind = el("input", { name: "remind_first_s", inputmode: "numeric", size: 6, value: z.remind_first_s ?? "", placeholder: "不提醒 off", "data-path": path + ".remind_first_s" });
    remind.addEventListener("input", () => { z.remind_first_s = num(remind.value); clearErrors(["zones", i]); schedulePreview(); });
    const windows = el("div", { class: "windows" });
    const renderWindows = () => {
      windows.replaceChildren(...z.allowed.map((w, j) => windowRow(z, i, w, j, renderWindows)));
    };
    renderWindows();
    const addWindow = el("button", { type: "button", class: "small-button", text: "＋ 允许时段 Allowed window",
      onclick: () => { z.allowed.push({ days: [...DAYS], from: "18:00", to: "22:00" }); renderWindows(); schedulePreview(); } });
    const select = el("button", { type: "button", class: "small-button", text: "编辑顶点 Edit outline", "aria-label": "edit the outline of zone " + (i + 1),
      onclick: () => { activate("zone", i); overlay.focus({ preventScroll: true }); } });
    const removeVertex = el("button", { type: "button", class: "small-button", text: "删除所选顶点 Delete selected vertex",
      onclick: () => { if (state.active && state.active.kind === "zone" && state.active.index === i && state.vertex !== null) deleteVertex(state.vertex); } });
    const remove = el("button", { type: "button", class: "danger small-button", text: "删除区域 Delete zone",
      onclick: () => { state.zones.splice(i, 1); state.active = null; state.errors = state.errors.filter((e) => e.path[0] !== "zones"); renderAll(); schedulePreview(); } });
    const item = el("div", { class: "item zone-item", "data-kind": "zone", "data-index": i, role: "group", "aria-label": "zone 区域 " + (i + 1) },
      el("div", { class: "item-head" }, el("b", { text: "#" + (i + 1) }), el("label", { class: "grow" }, "名称 name ", name), select),
      slot(path), slot(path + ".name"),
      el("div", { class: "checks", role: "group", "aria-label": "categories 类别" }, ...categories), slot(path + ".categories"),
      el("div", { class: "row" }, el("label", {}, "停留 dwell (s) ", dwell), el("label", {}, "锚点 anchor ", anchor), overlapLabel),
      slot(path + ".dwell_s"), slot(path + ".anchor"), slot(path + ".min_overlap"),
      el("div", { class: "row", role: "group", "aria-label": "remind first 先提醒 (门前三包)" },
        el("label", {}, "责任单位 unit ", unit), el("label", {}, "名称 name ", unitName), el("label", {}, "先提醒 remind first (s) ", remind)),
      slot(path + ".responsible"), slot(path + ".remind_first_s"),
      el("div", { class: "row" }, el("span", { class: "small muted vertex-count" }), removeVertex, remove),
      el("p", { class: "small ground-info", "data-zone-info": i }),
      slot(path + ".polygon"),
      el("div", { class: "small" }, "允许时段 Allowed windows (legal then · 此时段内合法)"), windows, addWindow, slot(path + ".allowed"));
    item.addEventListener("focusin", (event) => { if (event.target !== remove) activateQuietly("zone", i); });
    return item;
  }

  function windowRow(z, i, w, j, rerender) {
    const path = `zones.${i}.allowed.${j}`;
    const days = DAYS.map((day) => {
      const box = el("input", { type: "checkbox", name: "day", value: day, checked: w.days.includes(day) });
      box.addEventListener("change", () => { w.days = DAYS.filter((d) => row.querySelector(`input[value=${d}]`).checked); clearErrors(["zones", i]); schedulePreview(); });
      return el("label", { class: "check" }, box, DAY_LABEL[day]);
    });
    const from = el("input", { name: "from", value: w.from, size: 5, placeholder: "18:00", pattern: "[0-9]{1,2}:[0-9]{2}", "aria-label": "from 开始" });
    const to = el("input", { name: "to", value: w.to, size: 5, placeholder: "22:00", pattern: "[0-9]{1,2}:[0-9]{2}", "aria-label": "to 结束" });
    from.addEventListener("input", () => { w.from = from.value.trim(); clearErrors(["zones", i]); schedulePreview(); });
    to.addEventListener("input", () => { w.to = to.value.trim(); clearErrors(["zones", i]); schedulePreview(); });
    const remove = el("button", { type: "button", class: "small-button", text: "删除 Remove", "aria-label": "remove window " + (j + 1),
      onclick: () => { z.allowed.splice(j, 1); rerender(); schedulePreview(); } });
    const row = el("div", { class: "window", "data-path": path },
      el("div", { class: "checks" }, ...days), el("label", {}, "从 from ", from), el("label", {}, "到 to ", to), remove, slot(path));
    return row;
  }

  function activateQuietly(kind, index) {
    if (state.active && state.active.kind === kind && state.active.index === index) return;
    activate(kind, index);
  }

  function maskItem(m, i) {
    const path = "exclude." + i;
    const select = el("button", { type: "button", class: "small-button", text: "编辑顶点 Edit outline",
      onclick: () => { activate("mask", i); overlay.focus({ preventScroll: true }); } });
    const removeVertex = el("button", { type: "button", class: "small-button", text: "删除所选顶点 Delete selected vertex",
      onclick: () => { if (state.active && state.active.kind === "mask" && state.active.index === i && state.vertex !== null) deleteVertex(state.vertex); } });
    const remove = el("button", { type: "button", class: "danger small-button", text: "删除 Delete",
      onclick: () => { state.masks.splice(i, 1); state.active = null; state.errors = state.errors.filter((e) => e.path[0] !== "exclude"); renderAll(); schedulePreview(); } });
    const item = el("div", { class: "item mask-item", "data-kind": "mask", "data-index": i, role: "group", "aria-label": "exclude mask 屏蔽区 " + (i + 1) },
      el("div", { class: "item-head" }, el("b", { text: "屏蔽区 mask #" + (i + 1) }), el("span", { class: "small muted vertex-count" }), select, removeVertex, remove),
      slot(path), slot(path + ".polygon"));
    item.addEventListener("focusin", (event) => { if (event.target !== remove) activateQuietly("mask", i); });
    return item;
  }

  function renderCounts() {
    const count = (node, polygon) => { const c = node.querySelector(".vertex-count"); if (c) c.textContent = polygon.length + " 顶点 vertices"; };
    zonesBox.querySelectorAll(".item").forEach((node, i) => state.zones[i] && count(node, state.zones[i].polygon));
    masksBox.querySelectorAll(".item").forEach((node, i) => state.masks[i] && count(node, state.masks[i].polygon));
  }

  const fmt = (v, digits = 2) => (v === null || v === undefined ? "—" : Number(v).toFixed(digits));

  function renderPoints() {
    const rows = state.points.map((p, i) => {
      const px = ["x", "y"].map((axis, a) => {
        const input = el("input", { name: "px_" + axis, inputmode: "decimal", size: 6, value: p.px ? String(round(p.px[a], 1)) : "",
          "data-path": `calibration.points.${i}.px`, "aria-label": `point ${i + 1} pixel ${axis}` });
        input.addEventListener("change", () => {
          const v = num(input.value);
          if (v === null || Number.isNaN(v)) return;
          const [w, h] = stageSize();
          p.px = p.px || [w / 2, h / 2];
          p.px[a] = clamp(v, 0, a ? h : w);
          clearErrors(["calibration", "points", i]);
          drawStage();
          schedulePreview();
        });
        return el("td", { "data-label": (axis === "x" ? "像素 x px" : "像素 y px") }, input);
      });
      const coords = ["lon", "lat"].map((key) => {
        const input = el("input", { name: key, inputmode: "decimal", size: 11, value: Number.isFinite(p[key]) ? String(p[key]) : "",
          "data-path": `calibration.points.${i}.${key}`, "aria-label": `point ${i + 1} ${key === "lon" ? "longitude 经度" : "latitude 纬度"}`, autocomplete: "off" });
        const both = () => {
          // "118.79701, 32.06011" pasted (or typed) into lon fills both.
          const parts = input.value.split(/[,，\s]+/).filter(Boolean);
          if (key !== "lon" || parts.length !== 2 || !parts.every((part) => Number.isFinite(num(part)))) return;
          input.value = parts[0];
          input.closest("tr").querySelector("input[name=lat]").value = parts[1];
          p.lat = num(parts[1]);
          input.dispatchEvent(new Event("input"));
        };
        input.addEventListener("paste", () => setTimeout(both, 0));
        input.addEventListener("change", both);
        input.addEventListener("input", () => {
          p[key] = num(input.value);
          clearErrors(["calibration", "points", i]);
          drawStage();
          if (Number.isFinite(p.lon) && Number.isFinite(p.lat) && state.mode && state.mode.type === "map" && state.mode.index === i) setMode(null);
          schedulePreview();
        });
        return el("td", { "data-label": key === "lon" ? "经度 lon" : "纬度 lat" }, input);
      });
      const LABEL = { residual: "残差 residual m", reprojection: "重投影 reprojection m", location: "定位 ± m" };
      const errorCells = ["residual", "reprojection", "location"].map((name) => el("td", { class: "num " + name, "data-label": LABEL[name] }));
      const actions = el("td", { class: "actions-cell" },
        el("button", { type: "button", class: "small-button", text: "像素 Pixel", "aria-label": `pick the pixel of point ${i + 1} 选像素`, onclick: () => pickPixel(i) }),
        el("button", { type: "button", class: "small-button", text: "地图 Map", "aria-label": `pick point ${i + 1} on the map 地图选点`,
          onclick: () => { state.selectedPoint = i; setMode({ type: "map", index: i }); document.getElementById("setup-map").focus(); } }),
        el("button", { type: "button", class: "danger small-button", text: "删除 Delete", "aria-label": `delete point ${i + 1}`,
          onclick: () => { state.points.splice(i, 1); state.errors = state.errors.filter((e) => e.path[0] !== "calibration"); if (state.mode && state.mode.index !== undefined) setMode(null); renderPoints(); drawStage(); schedulePreview(); } }));
      const row = el("tr", { "data-index": i, class: state.selectedPoint === i ? "selected" : "" },
        el("td", { class: "index", "data-label": "标定点 point", text: String(i + 1) }), ...px, ...coords, ...errorCells, actions);
      const errorRow = el("tr", { class: "error-row" }, el("td", { colspan: 9 }, slot(`calibration.points.${i}`)));
      return [row, errorRow];
    });
    pointsBody.replaceChildren(...rows.flat());
    fillPreviewCells();
    showErrors();
  }

  function renderAll() {
    zonesBox.replaceChildren(...state.zones.map(zoneItem));
    if (!state.zones.length) zonesBox.append(el("p", { class: "muted small", text: "No zones yet: ＋ 区域 Zone, then click the corners on the snapshot. 暂无区域。" }));
    masksBox.replaceChildren(...state.masks.map(maskItem));
    if (!state.masks.length) masksBox.append(el("p", { class: "muted small", text: "None. 无。" }));
    if (state.active) activate(state.active.kind, state.active.index);
    renderCounts();
    renderPoints();
    drawStage();
    drawMapLayers();
  }

  /* ---- errors: the server's field paths, shown next to the field -------------------------------- */

  function normalisePath(loc) {
    let parts = Array.isArray(loc) ? [...loc] : String(loc || "").replace(/\[(\d+)\]/g, ".$1").split(".").filter(Boolean);
    parts = parts.map((p) => (typeof p === "string" && /^\d+$/.test(p) ? Number(p) : p));
    if (parts[0] === "body") parts.shift();
    if (parts[0] === "config") parts.shift();
    return parts;
  }

  const formatPath = (parts) => parts.reduce((out, p) => (typeof p === "number" ? out + "[" + p + "]" : out ? out + "." + p : p), "");

  /* FastAPI's [{loc, msg}], {field, msg} objects, or a "zones[0].polygon: message" string. */
  function problemsOf(detail) {
    const items = Array.isArray(detail) ? detail : [detail];
    return items.map((item) => {
      if (typeof item === "string") {
        const match = item.match(/^([A-Za-z_][\w]*(?:\[\d+\]|\.[A-Za-z_][\w]*)*):\s*(.*)$/s);
        return match ? { path: normalisePath(match[1]), msg: match[2] } : { path: [], msg: item };
      }
      const loc = item.loc !== undefined ? item.loc : item.field;
      return { path: normalisePath(loc), msg: String(item.msg || item.message || item.detail || JSON.stringify(item)) };
    }).map((p) => ({ ...p, field: formatPath(p.path) }));
  }

  function describe(problem) {
    const [head, index] = problem.path;
    let what = problem.field || "config";
    if (head === "zones" && Number.isInteger(index) && state.zones[index]) what += " (区域 zone “" + state.zones[index].name + "”)";
    if (head === "calibration" && problem.path[1] === "points" && Number.isInteger(problem.path[2])) what += " (标定点 point " + (problem.path[2] + 1) + ")";
    return what + ": " + problem.msg;
  }

  function clearErrors(prefix) {
    const before = state.errors.length;
    state.errors = state.errors.filter((e) => !prefix.every((p, i) => e.path[i] === p));
    if (state.errors.length !== before) showErrors();
  }

  function showErrors() {
    for (const node of form.querySelectorAll(".field-error")) node.replaceChildren();
    for (const node of form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
    for (const node of form.querySelectorAll(".item.invalid, .window.invalid")) node.classList.remove("invalid");
    const slots = new Map([...form.querySelectorAll("[data-error-for]")].map((node) => [node.dataset.errorFor, node]));
    for (const problem of state.errors) {
      let target = null;
      for (let n = problem.path.length; n >= 0 && !target; n--) target = slots.get(problem.path.slice(0, n).join(".")) || null;
      if (target) target.append(el("span", { text: describe(problem) }));
      const input = form.querySelector(`[data-path="${problem.path.join(".")}"]`);
      if (input) input.setAttribute("aria-invalid", "true");
      if (problem.path[0] === "zones" && Number.isInteger(problem.path[1])) {
        const item = zonesBox.querySelector(`.item[data-index="${problem.path[1]}"]`);
        if (item) item.classList.add("invalid");
      }
    }
    errorsBox.replaceChildren(...(state.errors.length ? [
      el("p", { text: "未保存 Not saved: " + state.errors.length + " problem(s) · 请修改标红的字段 fix the fields marked in red" }),
      el("ul", {}, ...state.errors.map((problem) => el("li", { text: describe(problem) }))),
    ] : []));
    drawStage();
  }

  /* ---- preview ------------------------------------------------------------------------------ */

  let previewSeq = 0;
  const schedulePreview = SW.debounce(() => runPreview().catch((error) => { summary.textContent = "预览失败 preview failed: " + error.message; }), 300);

  async function runPreview() {
    const seq = ++previewSeq;
    const [width, height] = stageSize();
    const config = toConfig(true);
    const mapping = [...state.previewPoints];
    const result = await SW.api(apiBase + "/config/preview", { method: "POST", json: { config, width, height } });
    if (seq !== previewSeq) return;
    result.points = result.points.map((p) => ({ ...p, index: mapping[p.index] }));
    for (const problem of result.problems) {
      const [head, sub, index] = problem.loc;
      if (head === "calibration" && sub === "points" && Number.isInteger(index) && mapping[index] !== undefined) problem.loc[2] = mapping[index];
    }
    state.preview = result;
    renderPreview();
  }

  function fillPreviewCells() {
    const preview = state.preview;
    const byIndex = new Map((preview ? preview.points : []).map((p) => [p.index, p]));
    for (const row of pointsBody.querySelectorAll("tr[data-index]")) {
      const p = byIndex.get(Number(row.dataset.index));
      row.querySelector("td.residual").textContent = fmt(p && p.residual_m);
      row.querySelector("td.reprojection").textContent = fmt(p && p.reprojection_error_m);
      const location = row.querySelector("td.location");
      location.textContent = fmt(p && p.location_error_m, 1);
      const limit = num(field("max_reprojection_error_m").value) || 2;
      row.classList.toggle("bad", Boolean(p && p.reprojection_error_m !== null && p.reprojection_error_m > limit));
    }
  }

  function renderPreview() {
    const preview = state.preview;
    if (!preview) return;
    fillPreviewCells();
    for (const node of zonesBox.querySelectorAll("[data-zone-info]")) {
      const zone = preview.zones[Number(node.dataset.zoneInfo)];
      node.textContent = !zone ? "" : zone.outline
        ? "地面 on the ground: 定位误差 location error ± " + fmt(zone.location_error_m, 1) + " m (≤ " + fmt(zone.max_location_error_m, 1) + " m at the outline)" + (zone.clipped ? " · 超出地平线部分已裁去 cut at the horizon" : "")
        : preview.calibrated ? "无法投影到地面 cannot be placed on the ground" : "";
    }
    const calibrated = preview.calibrated;
    const parts = [calibrated ? "已标定 Calibrated" : "未标定 Not calibrated (" + preview.points.length + " / 4 points)"];
    if (preview.location_error_m !== null) parts.push("定位误差 location error ≤ " + fmt(preview.location_error_m, 1) + " m");
    if (preview.camera.bearing_deg !== null) parts.push("朝向 view " + Math.round(preview.camera.bearing_deg) + "°");
    if (preview.noise_px !== null) parts.push("点噪声 point noise " + fmt(preview.noise_px, 1) + " px");
    if (preview.grid_step_m !== null && buttons.grid.checked) parts.push("网格 grid " + preview.grid_step_m + " m");
    if (calibrated && preview.points.length === 4) parts.push("4 点无法互相校验 4 points cannot check each other: add more");
    summary.textContent = parts.join(" · ");
    summary.classList.toggle("ok", calibrated);
    const problems = problemsOf(preview.problems.map((p) => ({ loc: p.loc, msg: p.msg })));
    problemsList.replaceChildren(...problems.map((p) => el("li", { text: describe(p) })));
    drawStage();
    drawMapLayers();
  }

  /* ---- the map ---------------------------------------------------------------------------------- */

  const mapBox = document.getElementById("setup-map");
  const map = SWMap.create(mapBox, { zoomControl: true });
  mapBox.swMap = { map };
  map.setView([0, 0], 2);
  mapBox.append(el("div", { class: "map-crosshair", "aria-hidden": "true" }));
  const mapLayers = L.featureGroup().addTo(map);
  let mapTouched = false;
  for (const type of ["pointerdown", "wheel", "keydown"]) mapBox.addEventListener(type, () => { mapTouched = true; }, { passive: true });

  function pointIcon(i, pending) {
    const node = el("span", { class: "pin" + (pending ? " pending" : ""), text: String(i + 1) });
    return L.divIcon({ html: node, className: "sw-pin", iconSize: [24, 24], iconAnchor: [12, 12] });
  }

  function drawMapLayers() {
    mapLayers.clearLayers();
    const preview = state.preview;
    const lon = num(field("cam_lon").value), lat = num(field("cam_lat").value);
    const camera = Number.isFinite(lon) && Number.isFinite(lat) ? [lon, lat] : null;
    if (preview) {
      for (const zone of preview.zones) {
        if (!zone.outline) continue;
        const active = state.active && state.active.kind === "zone" && state.active.index === zone.index;
        const layer = L.polygon(zone.outline.map(SWMap.latLng), { className: "zone-area" + (active ? " active" : "") });
        layer.bindTooltip(SWMap.textNode("区域 zone " + (zone.name || zone.index + 1)), { sticky: true });
        layer.on("add", () => layer.getElement().setAttribute("data-zone", String(zone.index)));
        mapLayers.addLayer(layer);
      }
      for (const mask of preview.exclude) {
        if (mask.outline) mapLayers.addLayer(L.polygon(mask.outline.map(SWMap.latLng), { className: "mask-area", interactive: false }));
      }
      for (const p of preview.points) {
        if (!p.projected) continue;
        mapLayers.addLayer(L.polyline([SWMap.latLng(p.lonlat), SWMap.latLng(p.projected)], { className: "residual-line", interactive: false }));
        mapLayers.addLayer(L.circleMarker(SWMap.latLng(p.projected), { radius: 4, className: "projected", interactive: false }));
      }
    }
    if (camera) {
      const bearing = preview ? preview.camera.bearing_deg : null;
      const marker = L.marker(SWMap.latLng(camera), { icon: SWMap.cameraIcon(bearing), keyboard: false, interactive: false });
      marker.on("add", () => marker.getElement().setAttribute("data-camera", cameraId));
      mapLayers.addLayer(marker);
    }
    state.points.forEach((p, i) => {
      if (!(Number.isFinite(p.lon) && Number.isFinite(p.lat))) return;
      const marker = L.marker(SWMap.latLng([p.lon, p.lat]), { icon: pointIcon(i, !p.px), draggable: true, keyboard: false, title: "标定点 point " + (i + 1) });
      marker.on("dragend", () => setPointPlace(i, SWMap.lonLatOf(marker.getLatLng())));
      marker.on("add", () => marker.getElement().setAttribute("data-point", String(i)));
      mapLayers.addLayer(marker);
    });
    // Show everything until the operator pans or zooms; after that only when none of it is in view (a
    // camera typed in another city).
    const bounds = mapLayers.getBounds();
    if (bounds.isValid() && (!mapTouched || !map.getBounds().intersects(bounds))) fitAll();
  }

  function fitAll() {
    const bounds = mapLayers.getBounds();
    if (!bounds.isValid()) return;
    map.fitBounds(bounds.pad(0.25), { maxZoom: 20, animate: false });
  }

  const FitControl = L.Control.extend({
    options: { position: "topleft" },
    onAdd() {
      const button = el("button", { type: "button", class: "fit-button", title: "全部显示 Fit all", "aria-label": "fit the map to the camera, points and zones 全部显示", text: "⤢" });
      L.DomEvent.disableClickPropagation(button);
      button.addEventListener("click", fitAll);
      return el("div", { class: "leaflet-bar" }, button);
    },
  });
  new FitControl().addTo(map);

  function pickOnMap(lonlat) {
    const mode = state.mode;
    if (!mode) return false;
    if (mode.type === "map") setPointPlace(mode.index, lonlat);
    else if (mode.type === "location") { setLocation(lonlat); drawMapLayers(); }
    else return false;
    return true;
  }

  map.on("click", (event) => pickOnMap(SWMap.lonLatOf(event.latlng)));
  mapBox.addEventListener("keydown", (event) => {
    if ((event.key === "Enter" || event.key === " ") && event.target === mapBox && pickOnMap(SWMap.lonLatOf(map.getCenter()))) event.preventDefault();
    else if (event.key === "Escape" && state.mode) cancelMode();
  });

  /* ---- toolbar, fields, save ------------------------------------------------------------------ */

  buttons.zone.addEventListener("click", () => startDrawing("zone"));
  buttons.mask.addEventListener("click", () => startDrawing("mask"));
  buttons.point.addEventListener("click", addPoint);
  buttons.finish.addEventListener("click", finishDrawing);
  buttons.cancel.addEventListener("click", cancelMode);
  buttons.reload.addEventListener("click", () => loadSnapshot(true));
  buttons.grid.addEventListener("change", () => { drawStage(); renderPreview(); });
  buttons.location.addEventListener("click", () => { setMode({ type: "location" }); mapBox.focus(); });

  for (const name of ["name", "source", "timezone", "cam_lon", "cam_lat", "view_radius_m", "grid_code", "grid_team", "max_reprojection_error_m"]) {
    field(name).addEventListener("input", () => {
      const path = field(name).dataset.path.split(".");
      clearErrors(path.slice(0, name.startsWith("cam_") || name.startsWith("grid") ? 1 : path.length));
      schedulePreview();
    });
  }

  async function save() {
    if (state.mode && state.mode.type === "draw") finishDrawing();
    if (state.mode) setMode(null);
    const headers = { "Content-Type": "application/json", "X-CSRF-Token": csrf };
    if (state.version !== null && state.version !== undefined) headers["If-Match"] = String(state.version);
    saveStatus.textContent = "保存中 Saving…";
    const response = await fetch(apiBase + "/config", { method: "PUT", headers, credentials: "same-origin", body: JSON.stringify(toConfig(false)) });
    if (response.status === 401) { location.href = "/login?next=" + encodeURIComponent(location.pathname); return; }
    let body = null;
    try { body = await response.json(); } catch (_) { /* not JSON */ }
    if (response.ok) {
      state.version = body && body.version !== undefined ? body.version : state.version;
      if (body && body.config) state.loaded = body.config;
      state.errors = [];
      showErrors();
      saveStatus.textContent = "已保存 Saved" + (state.version !== null ? " · 版本 version " + state.version : "");
      saveStatus.className = "small ok";
      // setup_health.js: a version saved while the view was moved is what the camera will learn as its reference.
      document.dispatchEvent(new CustomEvent("sw:config-saved", { detail: { version: state.version } }));
      return;
    }
    saveStatus.className = "small bad";
    if (response.status === 422 && body) {
      state.errors = problemsOf(body.detail);
      saveStatus.textContent = "未保存 Not saved (422)";
      showErrors();
      const first = form.querySelector(".field-error:not(:empty)");
      if (first) first.scrollIntoView({ block: "center" });
    } else if (response.status === 412) {
      saveStatus.textContent = "未保存 Not saved: 配置已被他人修改 someone else saved this camera meanwhile; reload the page to see their version.";
    } else {
      const detail = body && body.detail ? (typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail)) : response.statusText;
      saveStatus.textContent = "未保存 Not saved (" + response.status + "): " + detail;
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    save().catch((error) => { saveStatus.textContent = "未保存 Not saved: " + error.message; saveStatus.className = "small bad"; });
  });

  /* ---- loading ---------------------------------------------------------------------------------- */

  function loadSnapshot(reload) {
    return new Promise((resolve) => {
      const previous = state.size;
      const before = reload ? toConfig(false) : null;
      const info = document.getElementById("snapshot-info");
      const done = () => {
        stage.classList.toggle("blank", !state.size);
        const [w, h] = stageSize();
        stage.style.aspectRatio = state.size ? "" : w + " / " + h;
        if (before && (previous || []).join() !== (state.size || []).join()) applyGeometry(before);
        else drawStage();
        resolve();
      };
      img.onload = () => {
        state.size = [img.naturalWidth, img.naturalHeight];
        info.textContent = state.size.join(" × ") + " px";
        done();
      };
      img.onerror = () => {
        state.size = null;
        info.textContent = "暂无截图 no snapshot yet (the camera uploads one) · drawing on a blank " + stageSize().join(" × ") + " frame";
        img.removeAttribute("src");
        done();
      };
      img.src = apiBase + "/snapshot?t=" + Date.now();
    });
  }

  async function loadConfig() {
    const response = await fetch(apiBase + "/config", { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (response.status === 401) { location.href = "/login?next=" + encodeURIComponent(location.pathname); return null; }
    if (response.status === 404) return { version: null, config: { id: cameraId, timezone: "Asia/Shanghai" } };
    if (!response.ok) throw new Error(response.status + " " + response.statusText);
    return response.json();
  }

  async function start() {
    const [stored] = await Promise.all([loadConfig(), loadSnapshot(false)]);
    if (!stored) return;
    state.version = stored.version ?? null;
    saveStatus.textContent = state.version !== null ? "版本 version " + state.version + (stored.updated_by ? " · " + stored.updated_by : "") : "新摄像头 new camera: not saved yet";
    applyConfig(stored.config);
    new ResizeObserver(() => drawStage()).observe(overlay);
    document.body.dataset.ready = "1";
    await runPreview();
  }

  start().catch((error) => { saveStatus.textContent = "加载失败 could not load: " + error.message; saveStatus.className = "small bad"; });
})();
