/* Officer page: the team's dispatched cases, evidence, location, report handling with note and photo. */
"use strict";

(() => {
  const { el, api, time, CATEGORY } = SW;
  const list = document.getElementById("list");
  const mapBox = document.getElementById("map");
  let cameraLayers = { cameras: [], zones: [] };
  let openCases = [];

  /* The team's open cases with the cameras and zones around them (map.js: basemap or plain view). */
  function renderMap() {
    const cases = openCases.map((item) => ({
      type: "Feature", id: item.id, geometry: item.location,
      properties: { status: item.status, category: item.category, zone: item.zone, overdue: item.overdue },
    }));
    const near = new Set(openCases.map((item) => item.camera_id));
    const cameras = cameraLayers.cameras.filter((f) => !cases.length || near.has(f.properties.camera_id));
    const zones = cameraLayers.zones.filter((f) => !cases.length || near.has(f.properties.camera_id));
    SWMap.render(mapBox, { cases, cameras, zones, onSelect: (id) => {
      const card = list.querySelector(`article.card[data-id="${id}"]`);
      if (card) { card.scrollIntoView({ block: "center" }); card.classList.add("flash"); setTimeout(() => card.classList.remove("flash"), 1500); }
    } });
  }

  async function load() {
    const [open, done] = await Promise.all([
      api("/api/v1/cases?status=dispatched&limit=100"),
      api("/api/v1/cases?status=handled&limit=20"),
    ]);
    // Reuse unchanged cards: a live update must not wipe a note being typed.
    const existing = new Map([...list.querySelectorAll("article.card")].map((node) => [node.dataset.id, node]));
    const cards = open.items.map((item) => {
      const node = existing.get(item.id);
      return node && node.dataset.updated === item.updated_at ? node : card(item);
    });
    if (!cards.length) cards.push(el("p", { class: "muted", text: "No open cases for your team. 暂无待处置案件。" }));
    if (done.items.length) {
      cards.push(el("h2", { class: "small muted", text: "Awaiting verification 待核查" }));
      cards.push(...done.items.map((item) => el("div", { class: "card done", "data-id": item.id },
        el("b", { text: CATEGORY[item.category] || item.category }), " · ", item.zone, " · ", SW.statusBadge(item))));
    }
    list.replaceChildren(...cards);
    openCases = open.items;
    renderMap();
  }

  function card(item) {
    const [lon, lat] = item.location.coordinates;
    const note = el("textarea", { name: "note", rows: 3, placeholder: "What was done 处置情况", required: true });
    const photo = el("input", { type: "file", name: "photo", accept: "image/*", capture: "environment" });
    const message = el("p", { class: "error", role: "alert" });
    const submit = el("button", { type: "submit", class: "primary", text: "Mark handled 已处置" });
    const form = el("form", { class: "handle" }, note, el("label", { class: "small" }, "Photo 照片 ", photo), submit, message);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      submit.disabled = true;
      message.textContent = "";
      try {
        const file = photo.files[0];
        if (file) {
          await api("/api/v1/cases/" + encodeURIComponent(item.id) + "/photos", {
            method: "POST", body: file, contentType: file.type || "image/jpeg",
          });
        }
        await api("/api/v1/cases/" + encodeURIComponent(item.id) + "/actions", {
          method: "POST", json: { action: "handle", note: note.value },
        });
        await load();
      } catch (error) {
        message.textContent = error.message;
        submit.disabled = false;
      }
    });
    return el("article", { class: "card" + (item.overdue ? " late" : ""), "data-id": item.id, "data-updated": item.updated_at },
      el("h2", {}, CATEGORY[item.category] || item.category, " ", SW.overdueBadge(item), " ", SW.cameraHealthBadge(item.camera_health)),
      el("p", {}, item.zone, " · ", el("span", { class: "muted", text: item.camera_id })),
      el("p", { class: "small" }, "Due 时限 ", el("b", { text: time(item.due_at) }), " · reported ", time(item.alerted_at)),
      el("p", { class: "small" }, "位置 ", el("a", { href: "geo:" + lat + "," + lon, text: lat.toFixed(5) + ", " + lon.toFixed(5) }),
        " ±" + item.location_error_m.toFixed(0) + " m", item.grid ? " · grid " + item.grid.code : ""),
      SW.evidenceFigure(item),
      form);
  }

  SW.live(SW.debounce(() => load().catch(console.error), 250));
  SWMap.loadCameras()
    .then((layers) => { cameraLayers = layers; renderMap(); })
    .catch((error) => console.warn("cameras on the map:", error.message));
  load().catch((error) => list.replaceChildren(el("p", { class: "error", text: error.message })));
})();
