/* Shared helpers for the streetwatch pages. No framework, no CDN; DOM built with textContent only. */
"use strict";

const SW = (() => {
  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrf = meta ? meta.getAttribute("content") : "";
  const SVG_NS = "http://www.w3.org/2000/svg";

  // Category → label, in the service's order (zones.categories), from the page's sw-categories meta.
  const CATEGORY = (() => {
    const labels = document.querySelector('meta[name="sw-categories"]');
    try {
      return labels ? JSON.parse(labels.getAttribute("content")) : {};
    } catch (_) {
      return {};
    }
  })();
  const STATUS = {
    reminded: "已提醒 reminded",
    self_rectified: "已自行整改 self-rectified",
    reported: "待审核 reported",
    filed: "已立案 filed",
    rejected: "误报 rejected",
    dispatched: "已派遣 dispatched",
    handled: "已处置 handled",
    closed: "已结案 closed",
  };

  const OBJECT_CLASS = {
    stall: "摊位货物 stall",
    laundry: "晾晒物 laundry",
    structure: "搭建物 structure",
    object: "堆放物 object",
  };
  const REJECT_REASON = {
    legal_awning: "合法遮阳篷 legal awning",
    parked_vehicle: "停放车辆 parked vehicle",
    person: "行人 person",
    shadow: "阴影 shadow",
    other: "其他 other",
  };

  function build(node, attrs, children) {
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") node.textContent = String(value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  const el = (tag, attrs, ...children) => build(document.createElement(tag), attrs, children);
  const svg = (tag, attrs, ...children) => build(document.createElementNS(SVG_NS, tag), attrs, children);

  async function api(path, options = {}) {
    const init = { method: options.method || "GET", headers: { "X-CSRF-Token": csrf }, credentials: "same-origin" };
    if (options.json !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(options.json);
    } else if (options.body !== undefined) {
      init.headers["Content-Type"] = options.contentType || "application/octet-stream";
      init.body = options.body;
    }
    const response = await fetch(path, init);
    if (response.status === 401) {
      location.href = "/login?next=" + encodeURIComponent(location.pathname);
      throw new Error("signed out");
    }
    if (!response.ok) {
      let detail = response.statusText;
      try {
        const body = await response.json();
        detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
      } catch (_) { /* not JSON */ }
      throw new Error(response.status + ": " + detail);
    }
    return response.status === 204 ? null : response.json();
  }

  function time(iso) {
    if (!iso) return "—";
    const d = new Date(iso);
    return d.toLocaleString(undefined, { month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });
  }

  function snapshotIndex(item) {
    const order = ["snapshot", "snapshot_clean", "snapshot_after", "handling_photo"];
    for (const kind of order) {
      const index = item.evidence.findIndex((e) => e.kind === kind);
      if (index >= 0) return index;
    }
    return -1;
  }

  /* The evidence snapshot with the detection box drawn over it (SVG in image pixels). */
  function evidenceFigure(item) {
    const index = snapshotIndex(item);
    if (index < 0) return el("p", { class: "muted", text: "No evidence image. 无证据图片。" });
    const evidence = item.evidence[index];
    const overlay = svg("svg", { class: "box", preserveAspectRatio: "none" });
    const img = el("img", { src: evidence.url, alt: "evidence " + evidence.kind, loading: "lazy" });
    const figure = el("figure", { class: "evidence" }, img, overlay,
      el("figcaption", { class: "muted small", text: evidence.kind + " · sha256 " + evidence.sha256.slice(0, 12) }));
    img.addEventListener("load", () => {
      overlay.setAttribute("viewBox", "0 0 " + img.naturalWidth + " " + img.naturalHeight);
      if (evidence.kind === "snapshot" || evidence.kind === "snapshot_clean") {
        const [x1, y1, x2, y2] = item.bbox;
        overlay.append(svg("rect", { x: x1, y: y1, width: x2 - x1, height: y2 - y1 }));
      }
    });
    img.addEventListener("error", () => figure.replaceWith(el("p", { class: "muted", text: "Evidence not uploaded. 证据未上传。" })));
    const others = item.evidence
      .map((e, i) => [e, i])
      .filter(([, i]) => i !== index)
      .map(([e]) => el("a", { href: e.url, target: "_blank", rel: "noopener", text: e.kind }));
    return el("div", {}, figure, others.length ? el("p", { class: "small" }, "Also: ", ...others.flatMap((a) => [a, " "])) : null);
  }

  function statusBadge(item) {
    return el("span", { class: "badge s-" + item.status, text: STATUS[item.status] || item.status });
  }

  const MARK = {
    reminder_ignored: "提醒未整改 reminder ignored",
    repeat: "重复 repeat",
  };

  function markBadge(item) {
    return item.mark ? el("span", { class: "badge m-" + item.mark, text: MARK[item.mark] || item.mark }) : null;
  }

  /* "mm:ss left" until an ISO time, or null once it passed. */
  function countdown(iso) {
    const left = Math.round((Date.parse(iso) - Date.now()) / 1000);
    if (left <= 0) return null;
    const h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
    return (h ? h + ":" + String(m).padStart(2, "0") : String(m)) + ":" + String(s).padStart(2, "0");
  }

  /* A ticking countdown to a reminder's deadline (ticks with every other countdown on the page). */
  function deadlineBadge(item) {
    if (item.status !== "reminded" || !item.remind_deadline) return null;
    return el("span", { class: "badge countdown", "data-deadline": item.remind_deadline, title: "整改期限 deadline " + time(item.remind_deadline) });
  }

  function tickCountdowns() {
    for (const node of document.querySelectorAll("[data-deadline]")) {
      const left = countdown(node.dataset.deadline);
      node.textContent = left ? "⏱ " + left + " 剩余 left" : "期限已到 deadline passed";
    }
  }
  setInterval(tickCountdowns, 1000);

  /* A camera's status (DESIGN §3.6); on a case, the status its camera had when the incident opened. */
  const CAMERA_HEALTH = {
    online: "在线 online",
    offline: "离线 offline",
    view_moved: "视角偏移 view moved",
    obstructed: "镜头遮挡 obstructed",
    blurred: "画面模糊 blurred",
  };

  function cameraHealthBadge(status) {
    if (!status || status === "online") return null;
    return el("span", { class: "badge camera-health", title: "the camera's view was not sound: judge with care 摄像头异常，请谨慎判断",
      text: "📷 " + (CAMERA_HEALTH[status] || status) });
  }

  function overdueBadge(item) {
    return item.overdue ? el("span", { class: "badge overdue", text: "超时 overdue" }) : null;
  }

  /* EventSource on the change log; onChange gets each case change, onCamera each camera.health event.
     The browser reconnects by itself. */
  function live(onChange, onCamera) {
    const indicator = document.getElementById("live");
    const source = new EventSource("/api/v1/events");
    source.addEventListener("open", () => indicator && indicator.classList.replace("off", "on"));
    source.addEventListener("error", () => indicator && indicator.classList.replace("on", "off"));
    source.addEventListener("case", (event) => onChange(JSON.parse(event.data)));
    if (onCamera) source.addEventListener("camera.health", (event) => onCamera(JSON.parse(event.data)));
    return source;
  }

  function debounce(fn, ms) {
    let timer = null;
    return (...args) => {
      clearTimeout(timer);
      timer = setTimeout(() => fn(...args), ms);
    };
  }

  return {
    el, svg, api, time, CATEGORY, STATUS, OBJECT_CLASS, REJECT_REASON, CAMERA_HEALTH,
    evidenceFigure, statusBadge, overdueBadge, cameraHealthBadge, live, debounce, MARK, markBadge, deadlineBadge, tickCountdowns,
  };
})();
