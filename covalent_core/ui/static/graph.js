"use strict";
// A dispatch's page: its transport graph (cytoscape, dagre layout), live by server-sent
// events, a node panel with details and logs, and the cancel and redispatch actions.
//
// Big graphs stay usable: siblings of the same name with the same dependencies (the tasks of
// a map) are drawn as one node "name ×N" once there are more than COLLAPSE_AT of them, and
// parameters are hidden above PARAMS_AT nodes (the checkbox shows them). The search box
// finds a node by id or name, inside a collapsed group too.

const COLLAPSE_AT = 8;
const PARAMS_AT = 300;
const LOG_REFRESH_MS = 1000;
const dispatchId = decodeURIComponent(location.pathname.split("/").pop());

const state = {
  graph: null, // as the API gave it
  dispatch: null, // its own fields, as last sent
  nodes: new Map(), // id -> node (with live status)
  groupOf: new Map(), // node id -> cytoscape element id (its own, or its group's)
  members: new Map(), // group element id -> [node ids]
  cy: null,
  selected: null, // {node: id} or {group: element id}
  logTimer: null,
  showParams: false,
};

function isParam(node) {
  return node.kind === "parameter";
}

function groupStatus(ids) {
  const counts = {};
  for (const id of ids) {
    const s = state.nodes.get(id).status;
    counts[s] = (counts[s] || 0) + 1;
  }
  for (const s of ["CANCELLING", "RUNNING", "FAILED", "CANCELLED"]) if (counts[s]) return s;
  if (counts.COMPLETED === ids.length) return "COMPLETED";
  return counts.COMPLETED ? "RUNNING" : "NEW_OBJECT";
}

function buildElements() {
  const { nodes, edges } = state.graph;
  const hideParams = !state.showParams;
  const parents = new Map(), children = new Map();
  for (const [p, c] of edges) {
    if (!parents.has(c)) parents.set(c, []);
    if (!children.has(p)) children.set(p, []);
    parents.get(c).push(p);
    children.get(p).push(c);
  }
  const visible = nodes.filter((n) => !(hideParams && isParam(n)));
  // Siblings: same name, same non-parameter parents, same children.
  const keyOf = (n) => {
    const ps = (parents.get(n.id) || []).filter((p) => !isParam(state.nodes.get(p)));
    const cs = children.get(n.id) || [];
    return `${n.name}|${[...new Set(ps)].sort((a, b) => a - b)}|${[...new Set(cs)].sort((a, b) => a - b)}`;
  };
  const byKey = new Map();
  for (const n of visible) {
    if (isParam(n)) continue;
    const key = keyOf(n);
    if (!byKey.has(key)) byKey.set(key, []);
    byKey.get(key).push(n.id);
  }
  state.groupOf.clear();
  state.members.clear();
  const elements = [];
  let g = 0;
  for (const ids of byKey.values()) {
    if (ids.length <= COLLAPSE_AT) continue;
    const gid = `g${g++}`;
    state.members.set(gid, ids);
    for (const id of ids) state.groupOf.set(id, gid);
    const name = state.nodes.get(ids[0]).name;
    elements.push({ data: { id: gid, label: `${name} ×${ids.length}`, status: groupStatus(ids), group: 1 } });
  }
  for (const n of visible) {
    if (state.groupOf.has(n.id)) continue;
    state.groupOf.set(n.id, `n${n.id}`);
    elements.push({
      data: { id: `n${n.id}`, node: n.id, label: `${n.id}: ${n.name}`, status: n.status, param: isParam(n) ? 1 : 0 },
    });
  }
  const seen = new Set();
  for (const [p, c, name] of edges) {
    const a = state.groupOf.get(p), b = state.groupOf.get(c);
    if (!a || !b || a === b) continue;
    const id = `${a}-${b}`;
    if (seen.has(id)) continue;
    seen.add(id);
    elements.push({ data: { id: `e:${id}`, source: a, target: b, label: a.startsWith("g") || b.startsWith("g") ? "" : name } });
  }
  return elements;
}

function draw() {
  const elements = buildElements();
  const big = elements.length > 2000;
  if (state.cy) state.cy.destroy();
  state.cy = cytoscape({
    container: document.getElementById("graph"),
    elements,
    textureOnViewport: big,
    hideEdgesOnViewport: big,
    minZoom: 0.02,
    maxZoom: 4,
    style: [
      { selector: "node", style: {
        label: "data(label)", "font-size": 11, "text-valign": "bottom", "text-margin-y": 4,
        "background-color": (n) => STATUS_COLORS[n.data("status")] || "#b8bfca",
        width: 22, height: 22, "text-max-width": 160, "text-wrap": "ellipsis" } },
      { selector: "node[group = 1]", style: { shape: "round-rectangle", width: 46, height: 26, "font-weight": 600 } },
      { selector: "node[param = 1]", style: { width: 10, height: 10, "font-size": 9, color: "#6b7382" } },
      { selector: "node:selected", style: { "border-width": 3, "border-color": "#1d2430" } },
      { selector: "edge", style: {
        width: 1.2, "line-color": "#c3c9d3", "target-arrow-color": "#c3c9d3",
        "target-arrow-shape": "triangle", "curve-style": "bezier", "arrow-scale": 0.7 } },
    ],
  });
  layout();
  // A small graph is not blown up to fill the screen.
  if (state.cy.zoom() > 1.2) {
    state.cy.zoom(1.2);
    state.cy.center();
  }
  state.cy.on("tap", "node", (event) => {
    const data = event.target.data();
    if (data.group) selectGroup(data.id);
    else selectNode(data.node);
  });
  if (state.selected && state.selected.node !== undefined) markSelected(state.selected.node);
}

// The postprocess node takes every task's output: its edges span every rank, which makes
// dagre's layout quadratic (a chain of 200 took 12 s). It is laid out without them, then
// put below the rest.
function layout() {
  const post = state.cy.nodes().filter((n) => {
    const node = state.nodes.get(n.data("node"));
    return node !== undefined && node.kind === "postprocess";
  });
  const rest = state.cy.elements().difference(post).difference(post.connectedEdges());
  rest.layout({ name: "dagre", rankDir: "TB", nodeSep: 18, rankSep: 46, animate: false }).run();
  if (post.nonempty()) {
    const box = rest.boundingBox();
    post.forEach((n, i) => n.position({ x: (box.x1 + box.x2) / 2 + 60 * i, y: box.y2 + 60 }));
  }
  state.cy.fit(undefined, 20);
}

function markSelected(nodeId) {
  state.cy.$(":selected").unselect();
  const element = state.cy.getElementById(state.groupOf.get(nodeId) || `n${nodeId}`);
  if (element.nonempty()) element.select();
  return element;
}

// -- the panel --------------------------------------------------------------------------

function field(name, ...value) {
  return [el("dt", {}, name), el("dd", {}, ...value)];
}

function stream(id, text) {
  return text ? el("pre", { id }, text) : el("p", { id, class: "muted" }, "nothing yet");
}

function stopLogs() {
  if (state.logTimer) clearTimeout(state.logTimer);
  state.logTimer = null;
}

async function selectNode(nodeId, { center = false } = {}) {
  stopLogs();
  state.selected = { node: nodeId };
  const element = markSelected(nodeId);
  if (center && element.nonempty()) state.cy.animate({ center: { eles: element }, zoom: Math.max(state.cy.zoom(), 1) });
  await showNode(nodeId);
}

async function showNode(nodeId) {
  let node;
  try {
    node = await api.get(`/api/dispatches/${dispatchId}/nodes/${nodeId}`);
  } catch (error) {
    showProblem(error);
    return;
  }
  if (!state.selected || state.selected.node !== nodeId) return; // another was chosen meanwhile
  const panel = document.getElementById("panel");
  const running = !TERMINAL.has(node.status);
  const actions = el("p", {});
  if (running && node.kind !== "parameter") {
    actions.append(el("button", { type: "button", class: "danger", id: "cancel-node",
      on: { click: () => confirmCancelNode(nodeId) } }, "cancel this task (and its dependents)"));
  }
  const inputs = node.inputs.map((i) =>
    el("div", { class: "mono" }, `${i.name} ← ${i.parameter ? "" : `node ${i.from} `}`, i.repr === null ? "" : i.repr));
  panel.replaceChildren(
    el("h2", {}, `${node.id}: `, el("span", { id: "node-name" }, node.name)),
    el("div", {}, badge(node.status), node.stage ? ` stage ${node.stage}` : ""),
    el("dl", {},
      node.cancel_reason ? field("cancel reason", el("span", { id: "cancel-reason" }, node.cancel_summary)) : [],
      field("kind", node.kind),
      field("executor", node.executor || "-"),
      field("options", el("span", { class: "mono" }, JSON.stringify(node.executor_config))),
      field("job handle", el("span", { class: "mono" }, node.job_handle ? JSON.stringify(node.job_handle) : "-")),
      field("started", when(node.started_at)),
      field("ended", when(node.ended_at)),
      node.sub_dispatch_id ? field("sub-dispatch", el("a", { href: `/dispatches/${node.sub_dispatch_id}` }, node.sub_dispatch_id)) : [],
      node.reused_from ? field("reused from", el("a", { href: `/dispatches/${node.reused_from}` }, node.reused_from)) : [],
      field("inputs", inputs.length ? inputs : "-"),
      node.output_repr !== null ? field("output", el("span", { class: "mono", id: "output" }, node.output_repr)) : [],
      node.error ? field("error", el("span", { id: "error" }, node.error)) : [],
    ),
    actions,
    node.traceback ? [el("h3", {}, "traceback"), el("pre", {}, node.traceback)] : [],
    el("h3", {}, "stdout", running ? el("span", { class: "muted" }, " (live)") : ""),
    stream("stdout", node.stdout),
    el("h3", {}, "stderr"),
    stream("stderr", node.stderr),
  );
  const out = document.getElementById("stdout");
  if (out) out.scrollTop = out.scrollHeight;
  if (running) state.logTimer = setTimeout(() => showNode(nodeId), LOG_REFRESH_MS);
}

function selectGroup(gid) {
  stopLogs();
  state.selected = { group: gid };
  const ids = state.members.get(gid);
  const name = state.nodes.get(ids[0]).name;
  document.getElementById("panel").replaceChildren(
    el("h2", {}, `${name} ×${ids.length}`),
    el("p", { class: "muted" }, "Tasks of the same name with the same dependencies. Click one:"),
    el("ul", { class: "members" }, ids.map((id) =>
      el("li", { on: { click: () => selectNode(id) } }, badge(state.nodes.get(id).status), ` ${id}`))),
  );
}

// -- cancel and redispatch --------------------------------------------------------------

function ask(title, list, note) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-body").replaceChildren(
    el("ul", { id: "confirm-list" }, list.map((n) => el("li", {}, `${n.id}: ${n.name} (${n.status})`))),
    note ? el("p", { class: "muted" }, note) : "",
  );
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), { once: true });
    dialog.showModal();
  });
}

async function confirmCancelNode(nodeId) {
  try {
    const preview = await api.get(`/api/dispatches/${dispatchId}/nodes/${nodeId}/cancel-preview`);
    const note = preview.keep.length ? `${preview.keep.length} downstream node(s) already finished keep their results.` : "";
    if (!(await ask(`Cancel ${preview.cancel.length} task(s)?`, preview.cancel, note))) return;
    await api.post(`/api/dispatches/${dispatchId}/cancel`, { task_ids: [nodeId] });
  } catch (error) {
    showProblem(error);
  }
}

async function confirmCancelDispatch() {
  const open = state.graph.nodes.filter((n) => !isParam(n) && !TERMINAL.has(state.nodes.get(n.id).status));
  const list = open.slice(0, 200).map((n) => state.nodes.get(n.id));
  const note = open.length > list.length ? `and ${open.length - list.length} more` : "";
  if (!(await ask(`Cancel the whole dispatch (${open.length} unfinished task(s))?`, list, note))) return;
  try {
    await api.post(`/api/dispatches/${dispatchId}/cancel`, {});
  } catch (error) {
    showProblem(error);
  }
}

async function redispatch() {
  try {
    const answer = await api.post(`/api/dispatches/${dispatchId}/redispatch`, { reuse: true });
    location.href = `/dispatches/${answer.dispatch_id}`;
  } catch (error) {
    showProblem(error);
  }
}

// -- live updates -----------------------------------------------------------------------

// The time left before the dispatch's deadline, ticking while it runs.
function timeLeft(at) {
  const left = Math.floor(at - Date.now() / 1000);
  if (left <= 0) return "passed";
  const h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
  return h ? `in ${h}h ${String(m).padStart(2, "0")}m` : m ? `in ${m}m ${String(s).padStart(2, "0")}s` : `in ${s}s`;
}

function showDeadline() {
  const d = state.dispatch;
  const shown = !d || d.deadline_at == null ? ""
    : TERMINAL.has(d.status) ? `deadline ${when(d.deadline_at)}` : `deadline ${timeLeft(d.deadline_at)}`;
  document.getElementById("deadline").textContent = shown;
}

function showDispatch(d) {
  state.dispatch = d;
  showDeadline();
  document.getElementById("status").replaceChildren(badge(d.status));
  document.getElementById("cancel-dispatch").disabled = TERMINAL.has(d.status);
  const tasks = state.graph.nodes.filter((n) => !isParam(n));
  const done = tasks.filter((n) => TERMINAL.has(state.nodes.get(n.id).status)).length;
  document.getElementById("progress").textContent = `${done}/${tasks.length} tasks done`;
}

function applyNodes(changes) {
  const touched = new Set();
  for (const change of changes) {
    const node = state.nodes.get(change.id);
    if (!node) continue;
    Object.assign(node, change);
    const eid = state.groupOf.get(change.id);
    if (eid) touched.add(eid);
  }
  state.cy.batch(() => {
    for (const eid of touched) {
      const element = state.cy.getElementById(eid);
      const ids = state.members.get(eid);
      element.data("status", ids ? groupStatus(ids) : state.nodes.get(element.data("node")).status);
    }
  });
  const sel = state.selected;
  if (sel && sel.node !== undefined && changes.some((c) => c.id === sel.node)) showNode(sel.node);
  if (sel && sel.group !== undefined && touched.has(sel.group)) selectGroup(sel.group);
}

function listen() {
  const events = new EventSource(`/api/dispatches/${dispatchId}/events`);
  events.addEventListener("nodes", (e) => applyNodes(JSON.parse(e.data)));
  events.addEventListener("dispatch", (e) => showDispatch(JSON.parse(e.data)));
}

// -- search -----------------------------------------------------------------------------

function find(text) {
  const wanted = text.trim();
  if (!wanted) return;
  let match = /^\d+$/.test(wanted) ? state.nodes.get(Number(wanted)) : undefined;
  if (!match) {
    const lower = wanted.toLowerCase();
    match = state.graph.nodes.find((n) => n.name.toLowerCase().includes(lower));
  }
  if (!match) {
    showProblem(`no node has the id or a name containing ${JSON.stringify(wanted)}`);
    return;
  }
  document.getElementById("problem").hidden = true;
  if (isParam(match) && !state.showParams) {
    document.getElementById("show-params").checked = state.showParams = true;
    draw();
  }
  selectNode(match.id, { center: true });
}

async function main() {
  try {
    state.graph = await api.get(`/api/dispatches/${dispatchId}`);
  } catch (error) {
    showProblem(error);
    return;
  }
  for (const n of state.graph.nodes) state.nodes.set(n.id, n);
  state.showParams = state.graph.nodes.length <= PARAMS_AT;
  document.getElementById("show-params").checked = state.showParams;
  document.getElementById("title").textContent = state.graph.name;
  document.getElementById("dispatch-id").textContent = state.graph.dispatch_id;
  document.title = `covalent-core: ${state.graph.name}`;
  draw();
  showDispatch(state.graph);
  listen();
  document.getElementById("search").addEventListener("keydown", (e) => {
    if (e.key === "Enter") find(e.target.value);
  });
  document.getElementById("show-params").addEventListener("change", (e) => {
    state.showParams = e.target.checked;
    draw();
  });
  document.getElementById("fit").addEventListener("click", () => state.cy.fit(undefined, 20));
  document.getElementById("cancel-dispatch").addEventListener("click", confirmCancelDispatch);
  document.getElementById("redispatch").addEventListener("click", redispatch);
  setInterval(showDeadline, 1000);
}

main();
