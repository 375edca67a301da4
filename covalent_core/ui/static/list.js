"use strict";
// The dispatches page: newest first, refreshed every two seconds with the filters applied.

const REFRESH_MS = 2000;

function progress(done, total) {
  const bar = el("span", { class: "bar" }, el("span"));
  bar.firstChild.style.width = total ? `${(100 * done) / total}%` : "0";
  return el("span", {}, bar, `${done}/${total}`);
}

async function refresh() {
  const params = new URLSearchParams();
  for (const [key, id] of [["status", "status"], ["name", "name"], ["q", "prefix"]]) {
    const value = document.getElementById(id).value.trim();
    if (value) params.set(key, value);
  }
  try {
    const rows = await api.get(`/api/dispatches?${params}`);
    const body = document.getElementById("rows");
    body.replaceChildren(
      ...rows.map((d) =>
        el("tr", { "data-dispatch-id": d.dispatch_id },
          el("td", { class: "id mono" }, el("a", { href: `/dispatches/${d.dispatch_id}` }, d.dispatch_id)),
          el("td", {}, d.name),
          el("td", {}, badge(d.status)),
          el("td", {}, progress(d.done, d.total)),
          el("td", {}, when(d.created_at)),
          el("td", {}, when(d.ended_at)),
        ),
      ),
    );
    document.getElementById("empty").hidden = rows.length > 0;
    document.getElementById("problem").hidden = true;
  } catch (error) {
    showProblem(error);
  }
}

document.getElementById("filters").addEventListener("input", refresh);
document.getElementById("filters").addEventListener("submit", (e) => e.preventDefault());
refresh();
setInterval(refresh, REFRESH_MS);
