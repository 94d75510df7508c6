// The chat page: asks /ask with the conversation so far, renders answers with clickable citation
// markers, and shows the cited source with the quoted span highlighted. Every text that comes from the
// server is put in the page with textContent / text nodes, never parsed as HTML.
"use strict";

const KEY_STORAGE = "rag-api-key";
const MARKER = /\[(\d+)\]/g;

const $ = (id) => document.getElementById(id);
const turns = []; // earlier turns: {role: "user" | "assistant", content}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

function apiKey() {
  return localStorage.getItem(KEY_STORAGE) || "";
}

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  const key = apiKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  const response = await fetch(path, { ...options, headers });
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    if (response.status === 401) $("key-form").hidden = false;
    const message = body && body.error ? body.error.message : `HTTP ${response.status}`;
    throw new Error(message);
  }
  return body;
}

function scrollLog() {
  const log = $("log");
  log.scrollTop = log.scrollHeight;
}

function markerButton(citation) {
  const button = el("button", {
    type: "button",
    class: "marker",
    "data-n": String(citation.n),
    title: `${citation.title}${citation.publisher ? " — " + citation.publisher : ""}`,
    text: `[${citation.n}]`,
  });
  button.addEventListener("click", () => openSource(citation, button));
  return button;
}

// The answer text with each [n] that names a citation turned into a button.
function textWithMarkers(text, byNumber) {
  const p = el("p", { class: "answer-text" });
  let last = 0;
  let markers = 0;
  for (const match of text.matchAll(MARKER)) {
    const citation = byNumber.get(Number(match[1]));
    if (!citation) continue;
    p.append(document.createTextNode(text.slice(last, match.index)), markerButton(citation));
    last = match.index + match[0].length;
    markers += 1;
  }
  p.append(document.createTextNode(text.slice(last)));
  if (markers === 0) {
    for (const citation of byNumber.values()) p.append(" ", markerButton(citation));
  }
  return p;
}

function kindOf(answer) {
  if (!answer.answerable) return "abstain";
  if (answer.conflicts && answer.conflicts.length) return "conflict";
  return "answerable";
}

const KIND_LABEL = {
  answerable: "Answer",
  conflict: "Sources disagree",
  abstain: "No supported answer",
};

function renderAnswer(answer) {
  const kind = kindOf(answer);
  const byNumber = new Map((answer.citations || []).map((c) => [c.n, c]));
  const card = el("article", { class: `message answer ${kind}`, "data-kind": kind });
  card.append(el("span", { class: "badge", text: KIND_LABEL[kind] }));
  card.append(textWithMarkers(answer.answer || "", byNumber));

  if (answer.conflicts && answer.conflicts.length) {
    const list = el("ul", { class: "conflicts" });
    for (const conflict of answer.conflicts) {
      const item = el("li", {}, el("strong", { text: `${conflict.quantity}: ` }));
      conflict.values.forEach((value, i) => {
        if (i) item.append("; ");
        item.append(value.text, " ");
        const citation = byNumber.get(value.citation);
        if (citation) item.append(markerButton(citation));
      });
      list.append(item);
    }
    card.append(list);
  }

  if (byNumber.size) {
    const list = el("ol", { class: "citations" });
    for (const c of byNumber.values()) {
      const where = [c.publisher, c.published].filter(Boolean).join(", ");
      list.append(el("li", {},
        markerButton(c), " ",
        el("span", { class: "cite-title", text: c.title }),
        where ? el("span", { class: "cite-meta", text: ` (${where})` }) : "",
        el("q", { class: "cite-quote", text: c.quote })));
    }
    card.append(list);
  }
  if (!answer.answerable && answer.related && answer.related.length) {
    // Passages near the question, offered to read; they are not an answer.
    const list = el("ul", { class: "related" });
    answer.related.forEach((r, i) => {
      const passage = { ...r, n: `r${i + 1}` };
      const button = el("button", { type: "button", class: "marker", "data-n": passage.n, text: "open" });
      button.addEventListener("click", () => openSource(passage, button));
      list.append(el("li", {}, button, " ", el("span", { class: "cite-title", text: r.title }),
        el("q", { class: "cite-quote", text: r.quote })));
    });
    card.append(el("p", { class: "related-head", text: "Closest passages (they do not answer the question):" }), list);
  }
  if (answer.timings_ms && answer.timings_ms.total !== undefined) {
    card.append(el("span", { class: "timing", text: `${Math.round(answer.timings_ms.total)} ms` }));
  }
  return card;
}

async function openSource(citation, button = null) {
  document.querySelectorAll(".marker.active").forEach((b) => b.classList.remove("active"));
  if (button) button.classList.add("active");
  const panel = $("source");
  panel.hidden = false;
  $("source-title").textContent = citation.title;
  $("source-meta").textContent = "Loading…";
  $("source-text").replaceChildren();
  try {
    const params = new URLSearchParams({ start: citation.start, end: citation.end });
    const doc = await api(`/sources/${encodeURIComponent(citation.doc_id)}?${params}`);
    $("source-title").textContent = doc.title;
    $("source-meta").textContent =
      [doc.publisher || "publisher unknown", doc.published || "date unknown"].join(" · ");
    const mark = el("mark", { id: "highlight", "data-n": String(citation.n), text: doc.text.slice(doc.span.start, doc.span.end) });
    $("source-text").replaceChildren(
      document.createTextNode(doc.text.slice(0, doc.span.start)),
      mark,
      document.createTextNode(doc.text.slice(doc.span.end)),
    );
    mark.scrollIntoView({ block: "center" });
  } catch (error) {
    $("source-meta").textContent = `Could not open the source: ${error.message}`;
  }
}

async function ask(question) {
  const log = $("log");
  log.append(el("div", { class: "message user", text: question }));
  const pending = el("div", { class: "message pending", text: "Searching the sources…" });
  log.append(pending);
  scrollLog();
  $("ask-button").disabled = true;
  try {
    const answer = await api("/ask", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ question, history: turns.slice(-20) }),
    });
    pending.replaceWith(renderAnswer(answer));
    turns.push({ role: "user", content: question }, { role: "assistant", content: answer.answer });
  } catch (error) {
    pending.replaceWith(el("div", { class: "message error", text: error.message }));
  } finally {
    $("ask-button").disabled = false;
    scrollLog();
  }
}

async function showStatus() {
  try {
    const health = await api("/health");
    $("status").textContent = `${health.documents} documents · ${health.chunks} passages`;
  } catch (error) {
    $("status").textContent = error.message;
  }
}

// Links such as /?doc=ID&start=S&end=E (Slack's "View in sources") open that source and span.
function openLinkedSource() {
  const params = new URLSearchParams(window.location.search);
  const docId = params.get("doc");
  if (!docId) return;
  const start = Number(params.get("start") || 0);
  const end = Number(params.get("end") || start);
  openSource({ doc_id: docId, start, end, n: "link", title: docId });
}

function setup() {
  $("ask-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const question = $("question").value.trim();
    if (!question) return;
    $("question").value = "";
    ask(question);
  });
  $("question").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      $("ask-form").requestSubmit();
    }
  });
  $("new-chat").addEventListener("click", () => {
    turns.length = 0;
    $("log").replaceChildren();
    $("source").hidden = true;
  });
  $("source-close").addEventListener("click", () => { $("source").hidden = true; });
  $("key-toggle").addEventListener("click", () => { $("key-form").hidden = !$("key-form").hidden; });
  $("api-key").value = apiKey();
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    localStorage.setItem(KEY_STORAGE, $("api-key").value.trim());
    $("key-form").hidden = true;
    showStatus();
  });
  $("key-clear").addEventListener("click", () => {
    localStorage.removeItem(KEY_STORAGE);
    $("api-key").value = "";
  });
  showStatus();
  openLinkedSource();
}

document.addEventListener("DOMContentLoaded", setup);
