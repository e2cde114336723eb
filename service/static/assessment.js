/* Assessment (考核): the table of GET /api/v1/stats/assessment for a period, grouped by team, grid, camera or
   category; the same figures as the API and its CSV. */
"use strict";

(() => {
  const { el, api, CATEGORY } = SW;
  const form = document.getElementById("period");
  const body = document.querySelector("#assessment tbody");
  const foot = document.querySelector("#assessment tfoot");
  const csv = document.getElementById("csv");
  const asOf = document.getElementById("as-of");
  const COLUMNS = [
    ["reported", "count"], ["filed", "count"], ["rejected", "count"], ["filing_rate", "rate"],
    ["dispatched", "count"], ["handled_on_time", "count"], ["overdue", "count"], ["closed", "count"],
    ["closing_rate", "rate"], ["reopened", "count"], ["rework_rate", "rate"], ["self_rectified", "count"],
    ["median_hours_to_close", "hours"], ["repeat_places", "count"],
  ];

  /* The figures as the page shows them: rates in percent with one decimal, hours with one. */
  function cell(value, kind) {
    if (value === null || value === undefined) return "—";
    if (kind === "rate") return (value * 100).toFixed(1) + "%";
    if (kind === "hours") return value.toFixed(1);
    return String(value);
  }

  function pad(n) {
    return String(n).padStart(2, "0");
  }

  /* Local midnight of a yyyy-mm-dd as ISO 8601 with the browser's offset. */
  function localMidnight(day) {
    const d = new Date(day + "T00:00:00");
    const offset = -d.getTimezoneOffset();
    const sign = offset >= 0 ? "+" : "-";
    return day + "T00:00:00" + sign + pad(Math.floor(Math.abs(offset) / 60)) + ":" + pad(Math.abs(offset) % 60);
  }

  function defaults() {
    const now = new Date();
    const first = new Date(now.getFullYear(), now.getMonth(), 1);
    const next = new Date(now.getFullYear(), now.getMonth() + 1, 1);
    const day = (d) => d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate());
    return { from: day(first), to: day(next) };
  }

  function row(item, tag) {
    const label = CATEGORY[item.group] ? CATEGORY[item.group] + " (" + item.group + ")" : item.group;
    return el("tr", { "data-group": item.group },
      el(tag, { text: label }),
      ...COLUMNS.map(([key, kind]) => el("td", { class: "num", "data-key": key, text: cell(item[key], kind) })));
  }

  async function load() {
    const data = new FormData(form);
    // ?from=…&to=… in the page's address (full ISO 8601 times) win over the date fields: links to a report.
    const given = new URLSearchParams(location.search);
    const params = new URLSearchParams({
      from: given.get("from") || localMidnight(data.get("from")),
      to: given.get("to") || localMidnight(data.get("to")),
      by: data.get("by"),
    });
    csv.href = "/api/v1/stats/assessment?" + params + "&format=csv";
    try {
      const table = await api("/api/v1/stats/assessment?" + params);
      body.replaceChildren(...table.items.map((item) => row(item, "td")));
      foot.replaceChildren(row(table.total, "th"));
      if (!table.items.length) body.append(el("tr", {}, el("td", { colspan: COLUMNS.length + 1, class: "muted", text: "No cases in this period. 本期无案件。" })));
      asOf.textContent = "as of 截至 " + new Date(table.as_of).toLocaleString();
      document.body.dataset.loaded = params.toString();
    } catch (error) {
      body.replaceChildren(el("tr", {}, el("td", { colspan: COLUMNS.length + 1, class: "bad", text: String(error.message) })));
    }
  }

  const given = new URLSearchParams(location.search);
  const start = defaults();
  form.elements.from.value = (given.get("from") || start.from).slice(0, 10);
  form.elements.to.value = (given.get("to") || start.to).slice(0, 10);
  if (given.get("by")) form.elements.by.value = given.get("by");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    history.replaceState(null, "", location.pathname);  // the fields decide from now on
    load();
  });
  form.elements.by.addEventListener("change", () => form.requestSubmit());
  load();
})();
