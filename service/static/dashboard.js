/* Command centre: live case list, map, evidence, review and dispatch. */
"use strict";

(() => {
  const { el, svg, api, time, CATEGORY, STATUS } = SW;
  const OPEN = ["reported", "filed", "dispatched", "handled"];
  const form = document.getElementById("filters");
  const tbody = document.querySelector("#cases tbody");
  const detail = document.getElementById("detail");
  const mapBox = document.getElementById("map");
  let selected = null;

  function query() {
    const data = new FormData(form);
    const params = new URLSearchParams();
    const status = data.get("status");
    if (status === "") OPEN.forEach((s) => params.append("status", s));
    else if (status !== "*") params.append("status", status);
    if (data.get("category")) params.append("category", data.get("category"));
    if (data.get("camera")) params.append("camera", data.get("camera").trim());
    if (data.get("overdue")) params.append("overdue", "true");
    return params;
  }

  async function load() {
    const params = query();
    params.set("limit", "200");
    const [list, geo] = await Promise.all([
      api("/api/v1/cases?" + params),
      api("/api/v1/cases.geojson?" + params),
    ]);
    document.getElementById("summary").textContent = list.total + " case(s)";
    tbody.replaceChildren(...list.items.map(row));
    renderMap(geo);
  }

  function row(item) {
    const tr = el("tr", {
      "data-id": item.id,
      class: (item.id === selected ? "selected " : "") + (item.overdue ? "late" : ""),
      onclick: () => select(item.id),
    },
      el("td", { text: time(item.alerted_at) }),
      el("td", { text: CATEGORY[item.category] || item.category }),
      el("td", {}, item.zone, el("br"), el("span", { class: "muted small", text: item.camera_id })),
      el("td", {}, SW.statusBadge(item)),
      el("td", {}, time(item.due_at), " ", SW.overdueBadge(item)));
    return tr;
  }

  /* Equirectangular projection around the cases' mean latitude: fine at city scale. */
  function renderMap(collection) {
    const W = 640, H = 300, PAD = 28;
    const features = collection.features;
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img" });
    root.append(svg("rect", { class: "ground", x: 0, y: 0, width: W, height: H }));
    if (!features.length) {
      root.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "muted", text: "no cases on the map" }));
      mapBox.replaceChildren(root);
      return;
    }
    const lons = features.map((f) => f.geometry.coordinates[0]);
    const lats = features.map((f) => f.geometry.coordinates[1]);
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
    for (const feature of features) {
      const [x, y] = project(feature.geometry.coordinates);
      const p = feature.properties;
      const dot = svg("circle", {
        cx: x.toFixed(1), cy: y.toFixed(1), r: feature.id === selected ? 9 : 6,
        class: "dot s-" + p.status + (p.overdue ? " late" : ""), "data-id": feature.id,
        onclick: () => select(feature.id),
      }, svg("title", { text: (CATEGORY[p.category] || p.category) + " · " + p.zone + " · " + p.status }));
      root.append(dot);
    }
    mapBox.replaceChildren(root);
  }

  async function select(id) {
    selected = id;
    for (const tr of tbody.querySelectorAll("tr")) tr.classList.toggle("selected", tr.dataset.id === id);
    const item = await api("/api/v1/cases/" + encodeURIComponent(id));
    renderDetail(item);
  }

  function actionForm(item) {
    const note = el("textarea", { name: "note", rows: 2, placeholder: "note / reason 备注 / 理由" });
    const message = el("p", { class: "error", role: "alert" });
    const run = async (action, extra = {}) => {
      message.textContent = "";
      try {
        const updated = await api("/api/v1/cases/" + encodeURIComponent(item.id) + "/actions", {
          method: "POST",
          json: { action, note: note.value || null, ...extra },
        });
        renderDetail(updated);
        load();
      } catch (error) {
        message.textContent = error.message;
      }
    };
    const buttons = [];
    if (item.status === "reported") {
      buttons.push(el("button", { class: "primary", "data-action": "file", type: "button", onclick: () => run("file"), text: "File 立案" }));
      buttons.push(el("button", { class: "danger", "data-action": "reject", type: "button", onclick: () => run("reject"), text: "Reject 误报" }));
    }
    let team = null;
    if (item.status === "filed") {
      team = el("input", { name: "team", value: item.grid ? item.grid.team : "", placeholder: "team", size: 10 });
      buttons.push(el("button", { class: "primary", "data-action": "dispatch", type: "button",
        onclick: () => run("dispatch", team.value ? { team: team.value } : {}), text: "Dispatch 派遣" }));
    }
    if (item.status === "handled") {
      buttons.push(el("button", { class: "primary", "data-action": "close", type: "button", onclick: () => run("close"), text: "Close 结案" }));
      buttons.push(el("button", { class: "danger", "data-action": "reopen", type: "button", onclick: () => run("reopen"), text: "Reopen 核查不通过" }));
    }
    if (!buttons.length) return el("p", { class: "muted", text: "No action for " + (STATUS[item.status] || item.status) + "." });
    return el("div", { class: "actions" }, note, team ? el("label", {}, "team ", team) : null, el("div", {}, ...buttons), message);
  }

  function renderDetail(item) {
    // Keep what the operator was typing when a live update re-renders the same case.
    const sameCase = detail.dataset.caseId === item.id && detail.dataset.status === item.status;
    const typed = sameCase ? detail.querySelector("textarea[name=note]")?.value : "";
    const [lon, lat] = item.location.coordinates;
    const history = el("ol", { class: "history" }, ...item.history.map((h) =>
      el("li", {}, el("span", { class: "muted", text: time(h.at) }), " ",
        h.action ? h.action : h.kind, " → ", el("b", { text: h.to_status }), " · ", h.actor + " (" + h.actor_role + ")",
        h.team ? " · " + h.team : "", h.note ? el("div", { class: "note", text: h.note }) : null)));
    detail.replaceChildren(
      el("h2", {}, CATEGORY[item.category] || item.category, " ", SW.statusBadge(item), " ", SW.overdueBadge(item)),
      SW.evidenceFigure(item),
      el("dl", {},
        el("dt", { text: "camera / zone" }), el("dd", { text: item.camera_id + " / " + item.zone }),
        el("dt", { text: "grid / team" }), el("dd", { text: (item.grid ? item.grid.code + " / " + item.grid.team : "—") + (item.team ? " → " + item.team : "") }),
        el("dt", { text: "location" }), el("dd", { text: lat.toFixed(6) + ", " + lon.toFixed(6) + " ±" + item.location_error_m.toFixed(0) + " m" }),
        el("dt", { text: "seen / alerted" }), el("dd", { text: time(item.started_at) + " / " + time(item.alerted_at) }),
        el("dt", { text: "due 处置时限" }), el("dd", { text: time(item.due_at) }),
        el("dt", { text: "confidence" }), el("dd", { text: item.confidence.toFixed(2) + " · " + item.model }),
        item.cleared_at ? el("dt", { text: "cleared" }) : null, item.cleared_at ? el("dd", { text: time(item.cleared_at) }) : null,
        item.repeat_of ? el("dt", { text: "repeat of" }) : null,
        item.repeat_of ? el("dd", {}, el("a", { href: "#", onclick: (e) => { e.preventDefault(); select(item.repeat_of); }, text: item.repeat_of.slice(0, 8) })) : null),
      actionForm(item),
      el("h3", { text: "History 流转记录" }), history,
      el("p", { class: "small" }, el("a", { href: "/api/v1/cases/" + item.id + "/cap", target: "_blank", text: "CAP 1.2" })));
    detail.dataset.caseId = item.id;
    detail.dataset.status = item.status;
    detail.dataset.seq = String(item.history.length ? item.history[item.history.length - 1].seq : 0);
    const note = detail.querySelector("textarea[name=note]");
    if (note && typed) note.value = typed;
  }

  async function loadCameras() {
    const box = document.getElementById("cameras");
    const { items } = await api("/api/v1/cameras");
    box.replaceChildren(el("span", { text: "Cameras 摄像头: " }), ...(items.length ? items.map((c) =>
      el("span", { class: "camera " + c.status, title: "last frame " + time(c.last_frame_at) },
        "● " + c.id + (c.analysis_fps !== null ? " " + c.analysis_fps.toFixed(1) + " fps" : "") +
        (c.frames_dropped ? " · " + c.frames_dropped + " dropped" : ""))) : [el("span", { text: "none reporting" })]));
  }

  const refresh = SW.debounce(() => load().catch(console.error), 250);
  form.addEventListener("change", refresh);
  form.addEventListener("input", refresh);
  form.addEventListener("submit", (e) => { e.preventDefault(); refresh(); });
  SW.live((change) => {
    refresh();
    // Only changes the detail does not show yet (our own actions are already rendered).
    if (change.case_id === selected && change.seq > Number(detail.dataset.seq || 0)) {
      select(selected).catch(console.error);
    }
  });
  load().catch(console.error);
  loadCameras().catch(console.error);
  setInterval(() => loadCameras().catch(console.error), 30000);
})();
