"use strict";
// Shared by both pages. Every user value reaches the page as text (textContent), never as HTML.

const api = {
  csrf: null,
  async request(path, options) {
    const response = await fetch(path, { credentials: "same-origin", ...options });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
    return body;
  },
  get(path) {
    return api.request(path);
  },
  async post(path, body) {
    if (!api.csrf) api.csrf = (await api.get("/api/session")).csrf;
    return api.request(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": api.csrf },
      body: JSON.stringify(body || {}),
    });
  },
};

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "on") for (const [ev, fn] of Object.entries(value)) node.addEventListener(ev, fn);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const STATUS_COLORS = {
  NEW_OBJECT: "#b8bfca", PENDING_REUSE: "#b8bfca", RUNNING: "#2f7de1", POSTPROCESSING: "#2f7de1",
  COMPLETED: "#2e9d5b", FAILED: "#d64545", CANCELLING: "#e49b1a", CANCELLED: "#8e5cc4",
};
const TERMINAL = new Set(["COMPLETED", "FAILED", "CANCELLED"]);

function badge(status) {
  const node = el("span", { class: "badge status", "data-status": status }, status);
  node.style.background = STATUS_COLORS[status] || "#b8bfca";
  return node;
}

function when(seconds) {
  if (seconds === null || seconds === undefined) return "-";
  return new Date(seconds * 1000).toLocaleString();
}

function showProblem(error) {
  const box = document.getElementById("problem");
  box.textContent = String(error && error.message ? error.message : error);
  box.hidden = false;
}
