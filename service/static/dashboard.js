/* Command centre: live case list, map, evidence, review and dispatch. */
"use strict";

(() => {
  const { el, svg, api, time, CATEGORY, STATUS, OBJECT_CLASS, REJECT_REASON } = SW;
  const OPEN = ["reminded", "reported", "filed", "dispatched", "handled"];
  const PRECISION_WEEKS = 8;
  const form = document.getElementById("filters");
  const tbody = document.querySelector("#cases tbody");
  const precisionBody = document.querySelector("#precision tbody");
  const detail = document.getElementById("detail");
  const mapBox = document.getElementById("map");
  // The assessment is for supervisors and admins (the page and its API refuse the others).
  document.getElementById("assessment-link").hidden = !["supervisor", "admin"].includes(document.body.dataset.role);
  form.elements.category.append(...Object.entries(CATEGORY).map(([value, text]) => el("option", { value, text })));
  let selected = null;
  // What the operator has drawn or picked for a case under review, kept across live re-renders.
  const drafts = new Map();

  function query() {
    const data = new FormData(form);
    const params = new URLSearchParams();
    const status = data.get("status");
    if (status === "") OPEN.forEach((s) => params.append("status", s));
    else if (status !== "*") params.append("status", status);
    if (data.get("category")) params.append("category", data.get("category"));
    if (data.get("camera")) params.append("camera", data.get("camera").trim());
    if (data.get("overdue")) params.append("overdue", "true");
    if (data.get("mark")) params.append("mark", data.get("mark"));
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
    SW.tickCountdowns();
    renderMap(geo);
    loadPrecision().catch(console.error);
  }

  /* Precision of the AI reports from the operators' verdicts, newest weeks first. */
  async function loadPrecision() {
    const data = new FormData(form);
    const params = new URLSearchParams();
    params.set("since", new Date(Date.now() - PRECISION_WEEKS * 7 * 86400e3).toISOString());
    if (data.get("category")) params.append("category", data.get("category"));
    if (data.get("camera")) params.append("camera", data.get("camera").trim());
    const { items } = await api("/api/v1/stats/precision?" + params);
    items.sort((a, b) => b.week.localeCompare(a.week) || a.camera_id.localeCompare(b.camera_id) || a.category.localeCompare(b.category));
    const rows = items.slice(0, 20).map((p) => el("tr", { "data-camera": p.camera_id, "data-category": p.category, "data-week": p.week },
      el("td", { text: p.camera_id }),
      el("td", { text: CATEGORY[p.category] || p.category }),
      el("td", { text: p.week }),
      el("td", { class: "num", text: p.filed }),
      el("td", { class: "num", text: p.rejected }),
      el("td", { class: "num", text: p.pending }),
      el("td", { class: "num precision", text: p.precision === null ? "—" : Math.round(p.precision * 100) + "%" })));
    if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 7, class: "muted", text: "No reviews yet. 暂无审核记录。" })));
    precisionBody.replaceChildren(...rows);
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
      el("td", {}, SW.statusBadge(item), " ", SW.markBadge(item), " ", SW.cameraHealthBadge(item.camera_health)),
      el("td", {}, ...(item.status === "reminded" ? [SW.deadlineBadge(item)] : [time(item.due_at), " ", SW.overdueBadge(item)])));
    return tr;
  }

  /* Cases, cameras (view direction) and zones: on the basemap when one is configured, else the plain
     scale view (map.js). */
  let lastCases = { features: [] };
  let cameraLayers = { cameras: [], zones: [] };
  let cameraStatus = new Map();
  function renderMap(collection) {
    lastCases = collection;
    SWMap.render(mapBox, { cases: collection.features, ...cameraLayers, selected, onSelect: select });
  }

  async function select(id) {
    selected = id;
    for (const tr of tbody.querySelectorAll("tr")) tr.classList.toggle("selected", tr.dataset.id === id);
    const item = await api("/api/v1/cases/" + encodeURIComponent(id));
    renderDetail(item);
  }

  /* The clean snapshot with a box the operator drags (mouse, touch or pen: pointer events) or moves and
     resizes from the keyboard; the box is kept in snapshot pixels (the image's natural size), whatever
     size the image is shown at. Starts as the detection's own bbox. */
  function labelEditor(item, index, draft) {
    const evidence = item.evidence[index];
    const MIN_PX = 2;
    let size = null; // [naturalWidth, naturalHeight] once loaded
    let box = (draft.box || item.bbox).map(Number);
    const img = el("img", { src: evidence.url, alt: "clean snapshot 原始截图", draggable: "false" });
    const rect = svg("rect", { class: "label" });
    const hint = "Drag to draw the box. Arrow keys move it, Shift+arrow keys resize it, Ctrl for 1 px steps, Escape restores the detection. " +
      "拖动框选；方向键移动，Shift+方向键调整大小，Ctrl 微调 1 像素，Esc 恢复。";
    const overlay = svg("svg", { class: "box draw", preserveAspectRatio: "none", tabindex: "0", role: "application",
      "aria-label": "label box on the clean snapshot 标注框", "aria-describedby": "label-hint" }, rect);
    const names = ["x1", "y1", "x2", "y2"];
    const inputs = names.map((name) => el("input", { type: "number", name, min: 0, step: 1, class: "coord", "aria-label": name + " (snapshot px)" }));
    const objectClass = el("select", { name: "object_class", "aria-label": "class 类别" },
      ...Object.entries(OBJECT_CLASS).map(([value, text]) =>
        el("option", { value, text, selected: value === (draft.objectClass || item.object_class) })));
    objectClass.addEventListener("change", () => { draft.objectClass = objectClass.value; });

    const ordered = ([x1, y1, x2, y2]) => [Math.min(x1, x2), Math.min(y1, y2), Math.max(x1, x2), Math.max(y1, y2)];
    const clamp = (b) => {
      const [w, h] = size;
      const [x1, y1, x2, y2] = ordered(b);
      const cx = (v) => Math.min(Math.max(v, 0), w), cy = (v) => Math.min(Math.max(v, 0), h);
      return [cx(x1), cy(y1), cx(x2), cy(y2)];
    };
    const usable = (b) => b[2] - b[0] >= MIN_PX && b[3] - b[1] >= MIN_PX;
    const tenth = (v) => Math.round(v * 10) / 10;
    function draw() {
      const [x1, y1, x2, y2] = box;
      for (const [key, value] of Object.entries({ x: x1, y: y1, width: x2 - x1, height: y2 - y1 })) rect.setAttribute(key, tenth(value));
      inputs.forEach((input, i) => { if (document.activeElement !== input) input.value = String(tenth(box[i])); });
      draft.box = box;
    }
    function toSnapshot(event) {
      const r = img.getBoundingClientRect();
      return [(event.clientX - r.left) * size[0] / r.width, (event.clientY - r.top) * size[1] / r.height];
    }

    let start = null, before = null;
    overlay.addEventListener("pointerdown", (event) => {
      if (!size || event.button !== 0) return;
      event.preventDefault();
      overlay.setPointerCapture(event.pointerId);
      overlay.focus();
      start = toSnapshot(event);
      before = box;
      box = clamp([...start, ...start]);
      draw();
    });
    overlay.addEventListener("pointermove", (event) => {
      if (!start) return;
      event.preventDefault();
      box = clamp([...start, ...toSnapshot(event)]);
      draw();
    });
    overlay.addEventListener("pointerup", (event) => {
      if (!start) return;
      box = clamp([...start, ...toSnapshot(event)]);
      start = null;
      if (!usable(box)) box = before; // a click, not a drag: keep the box
      draw();
    });
    overlay.addEventListener("pointercancel", () => { if (start) { start = null; box = before; draw(); } });
    overlay.addEventListener("keydown", (event) => {
      if (!size) return;
      if (event.key === "Escape") { box = clamp(item.bbox.map(Number)); draw(); event.preventDefault(); return; }
      const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
      const move = moves[event.key];
      if (!move) return;
      event.preventDefault();
      const step = event.ctrlKey || event.metaKey ? 1 : Math.max(1, Math.round(Math.max(...size) / 100));
      const [dx, dy] = [move[0] * step, move[1] * step];
      const [x1, y1, x2, y2] = box;
      if (event.shiftKey) {
        const resized = clamp([x1, y1, Math.max(x2 + dx, x1 + MIN_PX), Math.max(y2 + dy, y1 + MIN_PX)]);
        if (usable(resized)) box = resized;
      } else {
        const mx = Math.min(Math.max(dx, -x1), size[0] - x2), my = Math.min(Math.max(dy, -y1), size[1] - y2);
        box = [x1 + mx, y1 + my, x2 + mx, y2 + my];
      }
      draw();
    });
    for (const input of inputs) {
      input.addEventListener("change", () => {
        const typed = inputs.map((i) => Number(i.value));
        if (size && typed.every(Number.isFinite)) {
          const next = clamp(typed);
          if (usable(next)) box = next;
        }
        draw();
      });
    }

    const figure = el("figure", { class: "evidence labeller" },
      el("div", { class: "stage" }, img, overlay),
      el("figcaption", { class: "muted small", text: evidence.kind + " · sha256 " + evidence.sha256.slice(0, 12) }));
    const controls = el("div", { class: "label-controls" },
      el("p", { id: "label-hint", class: "muted small", text: hint }),
      el("div", { class: "coords" }, el("span", { class: "small", text: "box 框 (px)" }),
        ...names.flatMap((name, i) => [el("label", { class: "small" }, name + " ", inputs[i])])),
      el("label", {}, "class 类别 ", objectClass));
    const node = el("div", { class: "label-editor" }, figure, controls);
    img.addEventListener("load", () => {
      size = [img.naturalWidth, img.naturalHeight];
      overlay.setAttribute("viewBox", "0 0 " + size[0] + " " + size[1]);
      inputs.forEach((input, i) => input.setAttribute("max", size[i % 2]));
      box = clamp(box);
      draw();
    });
    img.addEventListener("error", () => node.replaceWith(el("p", { class: "muted", text: "Clean snapshot not uploaded: file without a label. 原始截图未上传。" })));
    return {
      node,
      /* The label to file with, in snapshot pixels, or null when the snapshot never loaded. */
      value() {
        if (!size) return null;
        const b = clamp(box).map(tenth);
        return usable(b) ? { bbox: b, object_class: objectClass.value } : null;
      },
    };
  }

  /* Evidence for the panel: under review with a clean snapshot, the label editor on it. */
  function evidenceFor(item, draft) {
    const index = item.evidence.findIndex((e) => e.kind === "snapshot_clean");
    if (item.status !== "reported" || index < 0) return { node: SW.evidenceFigure(item), editor: null };
    const editor = labelEditor(item, index, draft);
    const others = item.evidence
      .filter((e, i) => i !== index)
      .map((e) => el("a", { href: e.url, target: "_blank", rel: "noopener", text: e.kind }));
    return { node: el("div", {}, editor.node, others.length ? el("p", { class: "small" }, "Also: ", ...others.flatMap((a) => [a, " "])) : null), editor };
  }

  function actionForm(item, editor, draft) {
    const note = el("textarea", { name: "note", rows: 2, placeholder: "note / reason 备注 / 理由" });
    const message = el("p", { class: "error", role: "alert" });
    const run = async (action, extra = {}) => {
      message.textContent = "";
      try {
        const updated = await api("/api/v1/cases/" + encodeURIComponent(item.id) + "/actions", {
          method: "POST",
          json: { action, note: note.value || null, ...extra },
        });
        drafts.delete(item.id);
        renderDetail(updated);
        load();
      } catch (error) {
        message.textContent = error.message;
      }
    };
    const buttons = [];
    let reason = null;
    if (item.status === "reported") {
      reason = el("select", { name: "reason", "aria-label": "reject reason 误报原因" },
        el("option", { value: "", text: "reason 误报原因…" }),
        ...Object.entries(REJECT_REASON).map(([value, text]) => el("option", { value, text, selected: value === draft.reason })));
      reason.addEventListener("change", () => { draft.reason = reason.value; });
      const file = () => {
        const label = editor ? editor.value() : null;
        return run("file", label ? { label } : {});
      };
      buttons.push(el("button", { class: "primary", "data-action": "file", type: "button", onclick: file, text: "File 立案" }));
      buttons.push(el("button", { class: "danger", "data-action": "reject", type: "button",
        onclick: () => run("reject", reason.value ? { reason: reason.value } : {}), text: "Reject 误报" }));
      buttons.push(reason);
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
    if (!drafts.has(item.id)) drafts.set(item.id, {});
    const draft = drafts.get(item.id);
    const evidence = evidenceFor(item, draft);
    const [lon, lat] = item.location.coordinates;
    const history = el("ol", { class: "history" }, ...item.history.map((h) =>
      el("li", { "data-seq": h.seq }, el("span", { class: "muted", text: time(h.at) }), " ",
        h.action ? h.action : h.kind, " → ", el("b", { text: h.to_status }), " · ", h.actor + " (" + h.actor_role + ")",
        h.team ? " · " + h.team : "",
        h.reason ? " · " + (REJECT_REASON[h.reason] || h.reason) : "",
        h.label ? " · " + (OBJECT_CLASS[h.label.object_class] || h.label.object_class) + " [" + h.label.bbox.map((v) => Math.round(v)).join(", ") + "]" : "",
        h.note ? el("div", { class: "note", text: h.note }) : null)));
    detail.replaceChildren(
      el("h2", {}, CATEGORY[item.category] || item.category, " ", SW.statusBadge(item), " ", SW.markBadge(item), " ",
        SW.overdueBadge(item), " ", SW.deadlineBadge(item)),
      evidence.node,
      el("dl", {},
        el("dt", { text: "camera / zone" }), el("dd", { text: item.camera_id + " / " + item.zone }),
        el("dt", { text: "camera 摄像头状态" }), el("dd", { class: "camera-state" },
          item.camera_health ? el("span", {}, SW.cameraHealthBadge(item.camera_health), " when it opened 发生时; ") : null,
          "now 当前: " + (SW.CAMERA_HEALTH[cameraStatus.get(item.camera_id)] || "not reporting 未上报")),
        el("dt", { text: "grid / team" }), el("dd", { text: (item.grid ? item.grid.code + " / " + item.grid.team : "—") + (item.team ? " → " + item.team : "") }),
        el("dt", { text: "location" }), el("dd", { text: lat.toFixed(6) + ", " + lon.toFixed(6) + " ±" + item.location_error_m.toFixed(0) + " m" }),
        el("dt", { text: "seen / alerted" }), el("dd", { text: time(item.started_at) + " / " + time(item.alerted_at) }),
        el("dt", { text: "due 处置时限" }), el("dd", { text: time(item.due_at) }),
        el("dt", { text: "confidence" }), el("dd", { text: item.confidence.toFixed(2) + " · " + item.model }),
        item.cleared_at ? el("dt", { text: "cleared" }) : null, item.cleared_at ? el("dd", { text: time(item.cleared_at) }) : null,
        item.repeat_of ? el("dt", { text: "repeat of" }) : null,
        item.repeat_of ? el("dd", {}, el("a", { href: "#", onclick: (e) => { e.preventDefault(); select(item.repeat_of); }, text: item.repeat_of.slice(0, 8) })) : null,
        item.reminded_at ? el("dt", { text: "reminded 提醒" }) : null,
        item.reminded_at ? el("dd", { text: time(item.reminded_at) + " → " + time(item.remind_deadline) + " (" + item.remind_first_s + " s)" }) : null),
      unitRecord(item),
      actionForm(item, evidence.editor, draft),
      el("h3", { text: "History 流转记录" }), history,
      el("p", { class: "small" }, el("a", { href: "/api/v1/cases/" + item.id + "/cap", target: "_blank", text: "CAP 1.2" })));
    SW.tickCountdowns();
    detail.dataset.caseId = item.id;
    detail.dataset.status = item.status;
    detail.dataset.seq = String(item.history.length ? item.history[item.history.length - 1].seq : 0);
    const note = detail.querySelector("textarea[name=note]");
    if (note && typed) note.value = typed;
  }

  /* The responsibility unit (门前三包) and how it answered its reminders over the last days. */
  function unitRecord(item) {
    if (!item.responsible) return null;
    const record = item.unit_record;
    const head = el("h3", {}, "责任单位 Unit: ", el("b", { class: "unit-name", text: item.responsible.name }),
      el("span", { class: "muted small", text: " " + item.responsible.unit }));
    if (!record) return el("section", { class: "unit" }, head);
    const cases = record.cases.filter((c) => c.id !== item.id).map((c) =>
      el("li", {}, el("a", { href: "#", onclick: (e) => { e.preventDefault(); select(c.id); }, text: time(c.alerted_at) }),
        " ", CATEGORY[c.category] || c.category, " ", SW.statusBadge(c), " ", SW.markBadge(c)));
    return el("section", { class: "unit", "aria-label": "unit record 责任单位记录" }, head,
      el("p", { class: "small unit-tally" }, "近 " + Math.round(record.days) + " 天 last " + Math.round(record.days) + " days: " +
        "提醒 reminded " + record.reminded + " · 自行整改 self-rectified " + record.self_rectified +
        " · 未整改 ignored " + record.reminder_ignored + " · 重复 repeat " + record.repeat),
      cases.length ? el("ul", { class: "small unit-cases" }, ...cases) : el("p", { class: "small muted", text: "No other cases. 无其他案件。" }));
  }

  async function loadCameras() {
    const box = document.getElementById("cameras");
    const [{ items }, layers] = await Promise.all([api("/api/v1/cameras"), SWMap.loadCameras().catch((error) => {
      console.warn("cameras on the map:", error.message);
      return cameraLayers;
    })]);
    const setupLink = (id) => el("a", { href: "/setup/cameras/" + encodeURIComponent(id), class: "setup-link", text: "设置 setup" });
    const reporting = new Set(items.map((c) => c.id));
    cameraStatus = new Map(items.map((c) => [c.id, c.status]));
    // Cameras set up here but not (yet) reporting a status.
    const configured = layers.cameras.map((f) => f.properties.camera_id).filter((id) => !reporting.has(id));
    box.replaceChildren(el("span", { text: "Cameras 摄像头: " }), ...(items.length ? items.map((c) =>
      el("span", { class: "camera " + c.status, "data-camera": c.id,
        title: "last frame " + time(c.last_frame_at) + (c.last_error ? " · " + c.last_error : "") },
        "● " + c.id + (c.status !== "online" ? " " + (SW.CAMERA_HEALTH[c.status] || c.status) : "") +
        (c.analysis_fps !== null ? " " + c.analysis_fps.toFixed(1) + " fps" : "") +
        (c.frames_dropped ? " · " + c.frames_dropped + " dropped" : ""), " ", setupLink(c.id))) : [el("span", { text: "none reporting" })]),
      ...configured.map((id) => el("span", { class: "camera", title: "no status reported yet 未上报状态" }, "○ " + id + " ", setupLink(id))),
      setupForm());
    cameraLayers = layers;
    renderMap(lastCases);
  }

  /* Open the setup page of any camera id, also one that has neither config nor status yet. */
  function setupForm() {
    const input = el("input", { name: "setup_camera", placeholder: "camera id 摄像头编号", size: 14, pattern: "[a-z0-9-]{1,64}",
      "aria-label": "camera id to set up 要设置的摄像头编号" });
    const node = el("form", { class: "setup-form" }, input, " ", el("button", { type: "submit", text: "设置摄像头 Set a camera up" }));
    node.addEventListener("submit", (event) => {
      event.preventDefault();
      const id = input.value.trim();
      if (/^[a-z0-9-]{1,64}$/.test(id)) location.href = "/setup/cameras/" + encodeURIComponent(id);
      else input.setCustomValidity("1-64 lower-case letters, digits and '-' 小写字母、数字和 -");
      input.reportValidity();
    });
    input.addEventListener("input", () => input.setCustomValidity(""));
    return node;
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
  }, () => loadCameras().then(() => selected && select(selected)).catch(console.error));
  load().catch(console.error);
  loadCameras().catch(console.error);
  setInterval(() => loadCameras().catch(console.error), 30000);
})();
