// The chat page: a welcome with example questions from the collection, the source list with filters,
// answers (short answer, quotes with the figure marked, confidence, conflicts side by side) with clickable
// citation markers, the cited source beside the chat (an overlay on small screens), copy and thumbs
// feedback, and the conversation kept in localStorage. The page's own words follow the question's
// language (en, zh, ja). Every text that comes from the server goes in as text nodes, never as HTML.
"use strict";

const KEY_STORAGE = "rag-api-key";
const CONVERSATION_STORAGE = "rag-conversation";
const FILTER_STORAGE = "rag-filters";
const MAX_ENTRIES = 40;
const ASK_TIMEOUT_MS = 60_000;
const FOOTNOTE = /(?:\[\d{1,3}\])+/g; // the articles' own note marks, e.g. "[1][4]": text, not links

const STRINGS = {
  en: {
    title: "Cited answers", sources: "Sources", apiKey: "API key", apiKeyLabel: "API key (kept in this browser only)",
    save: "Save", forget: "Forget", close: "Close", published: "Published", fromLabel: "From", toLabel: "To",
    undatedHint: "Articles without a date are left out while a date range is set.",
    all: "All", none: "None", clear: "Clear filters", read: "Read", questionLabel: "Question",
    ask: "Ask", newChat: "New conversation",
    placeholder: "Ask about the collection: a figure, a date, who did what",
    welcomeTitle: (n) => `Ask about ${n} indexed article${n === 1 ? "" : "s"}`,
    welcomeText: "Each answer quotes the sentence it comes from and names the article, its publisher and date. "
      + "When it cannot find an answer in them, it says so and shows the closest passages.",
    examplesHead: "Try a question written from the articles:",
    status: (d, c) => `${d} documents · ${c} passages`,
    answerable: "Answer", conflict: "Sources disagree", abstain: "No supported answer",
    accordingTo: "According to the source:", conflictLead: "The sources give different figures, newest first:",
    abstainText: "I could not find this in the sources.",
    related: "The closest passages:", open: "Open",
    confidence: "Confidence", confidenceHelp: "Calibrated probability that this answer is right",
    confidenceAbstainHelp: "How sure the composer is that no retrieved passage answers this",
    high: "high", medium: "medium", low: "low",
    copy: "Copy", copied: "Copied", copyFailed: "Could not copy",
    helpful: "Helpful", notHelpful: "Not helpful", thanks: "Thanks, saved", voteFailed: (m) => `Not saved: ${m}`,
    retry: "Retry", searching: "Searching the sources…",
    errNetwork: "Could not reach the server",
    errNetworkDetail: (d) => `The request got no response (${d}). Check that the service is running, then retry.`,
    errHttp: (s, t) => `The server answered HTTP ${s}${t ? " " + t : ""}`,
    errTimeout: (s) => `No answer within ${s} s`, errTimeoutDetail: "The server is busy or stuck; retry in a moment.",
    errKey: "API key needed (HTTP 401)", retryAfter: (s) => `Try again in ${s} s.`,
    publisherUnknown: "publisher unknown", dateUnknown: "date unknown", loading: "Loading…",
    sourceError: (m) => `Could not open the source: ${m}`,
    filtered: (k, n) => `Searching ${k} of ${n} sources`, from: (d) => `from ${d}`, to: (d) => `to ${d}`,
    noneSelected: "Select at least one source to ask.", filterNote: "Filtered",
  },
  zh: {
    title: "引用式问答", sources: "来源", apiKey: "API 密钥", apiKeyLabel: "API 密钥（只保存在本浏览器）",
    save: "保存", forget: "删除", close: "关闭", published: "发布日期", fromLabel: "从", toLabel: "到",
    undatedHint: "设定日期范围时，不含没有日期的文章。",
    all: "全选", none: "全不选", clear: "清除筛选", read: "阅读", questionLabel: "问题",
    ask: "提问", newChat: "新对话",
    placeholder: "就这些文章提问：数字、日期、谁做了什么",
    welcomeTitle: (n) => `就 ${n} 篇已索引文章提问`,
    welcomeText: "每个回答都会引用出处原句，并注明文章、发布者和日期。在文章中找不到答案时，会直说并列出最接近的段落。",
    examplesHead: "试试根据这些文章写出的问题：",
    status: (d, c) => `${d} 篇文档 · ${c} 个段落`,
    answerable: "回答", conflict: "来源说法不一", abstain: "没有可引用的答案",
    accordingTo: "据来源：", conflictLead: "各来源给出的数字不同（最新的在前）：",
    abstainText: "我没能在来源中找到这一点。",
    related: "最接近的段落：", open: "打开",
    confidence: "置信度", confidenceHelp: "经过校准的、这个回答正确的概率",
    confidenceAbstainHelp: "检索到的段落都不回答这个问题的把握", high: "高", medium: "中", low: "低",
    copy: "复制", copied: "已复制", copyFailed: "无法复制",
    helpful: "有帮助", notHelpful: "没有帮助", thanks: "谢谢，已保存", voteFailed: (m) => `未保存：${m}`,
    retry: "重试", searching: "正在检索来源…",
    errNetwork: "无法连接服务器",
    errNetworkDetail: (d) => `请求没有得到响应（${d}）。请确认服务正在运行，然后重试。`,
    errHttp: (s, t) => `服务器返回 HTTP ${s}${t ? " " + t : ""}`,
    errTimeout: (s) => `${s} 秒内没有答复`, errTimeoutDetail: "服务器繁忙或无响应，请稍后重试。",
    errKey: "需要 API 密钥（HTTP 401）", retryAfter: (s) => `请在 ${s} 秒后重试。`,
    publisherUnknown: "发布者不详", dateUnknown: "日期不详", loading: "加载中…",
    sourceError: (m) => `无法打开来源：${m}`,
    filtered: (k, n) => `在 ${n} 个来源中的 ${k} 个里检索`, from: (d) => `自 ${d}`, to: (d) => `至 ${d}`,
    noneSelected: "请至少选择一个来源再提问。", filterNote: "已筛选",
  },
  ja: {
    title: "出典つき回答", sources: "情報源", apiKey: "API キー", apiKeyLabel: "API キー（このブラウザーにのみ保存）",
    save: "保存", forget: "削除", close: "閉じる", published: "公開日", fromLabel: "開始", toLabel: "終了",
    undatedHint: "期間を指定している間は、日付のない記事は対象外です。",
    all: "すべて", none: "なし", clear: "絞り込みを解除", read: "読む", questionLabel: "質問",
    ask: "質問する", newChat: "新しい会話",
    placeholder: "記事について質問：金額、日付、誰が何をしたか",
    welcomeTitle: (n) => `索引済みの ${n} 本の記事について質問`,
    welcomeText: "回答には根拠となる文をそのまま引用し、記事名・発行元・日付を示します。記事の中に答えが見つからないときは、そう伝え、最も近い段落を示します。",
    examplesHead: "記事から作った質問を試す：",
    status: (d, c) => `${d} 件の文書 · ${c} 件の段落`,
    answerable: "回答", conflict: "情報源の記述が食い違っています", abstain: "根拠のある回答はありません",
    accordingTo: "出典によると：", conflictLead: "情報源によって数字が異なります（新しい順）：",
    abstainText: "情報源の中に見つけられませんでした。",
    related: "最も近い箇所：", open: "開く",
    confidence: "信頼度", confidenceHelp: "この回答が正しい確率（較正済み）",
    confidenceAbstainHelp: "取得した段落のどれも答えていないという確からしさ", high: "高", medium: "中", low: "低",
    copy: "コピー", copied: "コピーしました", copyFailed: "コピーできませんでした",
    helpful: "役に立った", notHelpful: "役に立たなかった", thanks: "ありがとうございます。保存しました",
    voteFailed: (m) => `保存できませんでした：${m}`,
    retry: "再試行", searching: "情報源を検索しています…",
    errNetwork: "サーバーに接続できません",
    errNetworkDetail: (d) => `応答がありません（${d}）。サービスが動いているか確認してから再試行してください。`,
    errHttp: (s, t) => `サーバーの応答：HTTP ${s}${t ? " " + t : ""}`,
    errTimeout: (s) => `${s} 秒以内に応答がありません`, errTimeoutDetail: "サーバーが混雑しているか応答していません。少し待って再試行してください。",
    errKey: "API キーが必要です（HTTP 401）", retryAfter: (s) => `${s} 秒後に再試行してください。`,
    publisherUnknown: "発行元不明", dateUnknown: "日付不明", loading: "読み込み中…",
    sourceError: (m) => `情報源を開けません：${m}`,
    filtered: (k, n) => `${n} 件中 ${k} 件の情報源を検索`, from: (d) => `${d} から`, to: (d) => `${d} まで`,
    noneSelected: "質問するには情報源を 1 つ以上選んでください。", filterNote: "絞り込み",
  },
};

const $ = (id) => document.getElementById(id);
const state = {
  entries: [], // {id, question, lang, filters, answer, vote}
  documents: [], // from GET /sources
  selected: null, // Set of doc ids, or null for all
  dateFrom: "",
  dateTo: "",
  lang: "en", // the page's own words: the browser's language, then the last question's
  health: null,
};

// --- small helpers ---------------------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children) {
    if (child === null || child === undefined || child === "") continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

function t(lang, key, ...args) {
  const value = (STRINGS[lang] || STRINGS.en)[key] ?? STRINGS.en[key];
  return typeof value === "function" ? value(...args) : value;
}

// Japanese text nearly always carries kana; Han characters without kana read as Chinese.
function languageOf(text) {
  if (/[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]/.test(text)) return "ja";
  if (/[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]/.test(text)) return "zh";
  return "en";
}

function browserLanguage() {
  for (const tag of navigator.languages || [navigator.language || "en"]) {
    const base = String(tag).toLowerCase().split("-")[0];
    if (base in STRINGS) return base;
  }
  return "en";
}

function newId() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  return `a${Date.now().toString(36)}${Math.random().toString(36).slice(2, 12)}`;
}

function reducedMotion() {
  return window.matchMedia("(prefers-reduced-motion: reduce)").matches;
}

function smallScreen() {
  return window.matchMedia("(max-width: 800px)").matches;
}

const SVG_NS = "http://www.w3.org/2000/svg";
const THUMB = "M2 10h3v10H2zM7 20h9.5a2 2 0 0 0 2-1.6l1.4-7A2 2 0 0 0 18 9h-5l.8-4.2A1.6 1.6 0 0 0 12.2 3L7 9.5z";
const COPY = "M8 7V4a1 1 0 0 1 1-1h10a1 1 0 0 1 1 1v12a1 1 0 0 1-1 1h-3M4 8h11v12H4z";

function icon(path, { filled = true, cls = "" } = {}) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", `icon ${cls}`);
  const p = document.createElementNS(SVG_NS, "path");
  p.setAttribute("d", path);
  if (!filled) p.setAttribute("class", "stroke");
  svg.append(p);
  return svg;
}

// --- the API ---------------------------------------------------------------------------------------------

class ApiFailure extends Error {
  constructor({ status = 0, statusText = "", message = "", retryAfter = null, network = false, timeout = false }) {
    super(message || (network ? "network error" : `HTTP ${status}`));
    Object.assign(this, { status, statusText, detail: message, retryAfter, network, timeout });
  }
}

function apiKey() {
  return localStorage.getItem(KEY_STORAGE) || "";
}

async function api(path, options = {}, timeoutMs = 30_000) {
  const headers = { ...(options.headers || {}) };
  const key = apiKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  let response;
  try {
    response = await fetch(path, { ...options, headers, signal: controller.signal });
  } catch (error) {
    const timeout = error && error.name === "AbortError";
    throw new ApiFailure({ network: !timeout, timeout, message: String(error && error.message || error) });
  } finally {
    clearTimeout(timer);
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    if (response.status === 401) $("key-form").hidden = false;
    const message = body && body.error && body.error.message ? body.error.message : "";
    const retry = Number(response.headers.get("Retry-After"));
    throw new ApiFailure({ status: response.status, statusText: response.statusText, message,
                           retryAfter: Number.isFinite(retry) && retry > 0 ? retry : null });
  }
  return body;
}

// --- storage ---------------------------------------------------------------------------------------------

function saveConversation() {
  const entries = state.entries.filter((e) => e.answer).slice(-MAX_ENTRIES);
  for (let keep = entries.length; keep >= 0; keep -= 5) {
    try {
      localStorage.setItem(CONVERSATION_STORAGE, JSON.stringify({ version: 1, entries: entries.slice(-keep) }));
      return;
    } catch {
      // over the quota: keep fewer, newest first
    }
  }
}

function loadConversation() {
  try {
    const saved = JSON.parse(localStorage.getItem(CONVERSATION_STORAGE) || "null");
    if (!saved || saved.version !== 1 || !Array.isArray(saved.entries)) return [];
    return saved.entries.filter((e) => e && typeof e.question === "string" && e.answer && e.id);
  } catch {
    return [];
  }
}

function saveFilters() {
  localStorage.setItem(FILTER_STORAGE, JSON.stringify({
    selected: state.selected ? [...state.selected] : null, dateFrom: state.dateFrom, dateTo: state.dateTo,
  }));
}

function loadFilters() {
  try {
    const saved = JSON.parse(localStorage.getItem(FILTER_STORAGE) || "null") || {};
    state.selected = Array.isArray(saved.selected) ? new Set(saved.selected) : null;
    state.dateFrom = typeof saved.dateFrom === "string" ? saved.dateFrom : "";
    state.dateTo = typeof saved.dateTo === "string" ? saved.dateTo : "";
  } catch {
    state.selected = null;
  }
}

// --- the page's own words ----------------------------------------------------------------------------------

function applyLanguage(lang) {
  state.lang = lang;
  document.documentElement.lang = lang;
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(lang, node.dataset.i18n);
  $("question").placeholder = t(lang, "placeholder");
  $("source-close").setAttribute("aria-label", t(lang, "close"));
  renderStatus();
  renderSources();
}

function renderStatus() {
  if (state.health) $("status").textContent = t(state.lang, "status", state.health.documents, state.health.chunks);
}

// --- sources and filters -------------------------------------------------------------------------------------

function activeFilters() {
  const filters = {};
  if (state.selected && state.documents.length && state.selected.size < state.documents.length) {
    filters.doc_ids = state.documents.map((d) => d.doc_id).filter((id) => state.selected.has(id));
  }
  if (state.dateFrom) filters.date_from = state.dateFrom;
  if (state.dateTo) filters.date_to = state.dateTo;
  return Object.keys(filters).length ? filters : null;
}

function describeFilters(filters, lang) {
  if (!filters) return "";
  const parts = [];
  const n = state.documents.length;
  if (filters.doc_ids) parts.push(t(lang, "filtered", filters.doc_ids.length, n));
  if (filters.date_from) parts.push(t(lang, "from", filters.date_from));
  if (filters.date_to) parts.push(t(lang, "to", filters.date_to));
  return parts.join(" · ");
}

function renderFilterSummary() {
  const filters = activeFilters();
  $("filter-summary").hidden = !filters;
  $("filter-text").textContent = describeFilters(filters, state.lang);
  $("date-hint").hidden = !(state.dateFrom || state.dateTo);
  $("date-from").value = state.dateFrom;
  $("date-to").value = state.dateTo;
  for (const box of document.querySelectorAll("#doc-list input[type=checkbox]")) {
    box.checked = !state.selected || state.selected.has(box.value);
  }
}

function setSelected(ids) {
  state.selected = ids.length === state.documents.length ? null : new Set(ids);
  saveFilters();
  renderFilterSummary();
}

function renderSources() {
  const list = $("doc-list");
  list.replaceChildren();
  const docs = [...state.documents].sort((a, b) => (b.published || "").localeCompare(a.published || ""));
  for (const doc of docs) {
    const box = el("input", { type: "checkbox", value: doc.doc_id, "data-doc": doc.doc_id });
    box.checked = !state.selected || state.selected.has(doc.doc_id);
    box.addEventListener("change", () => {
      const ids = [...document.querySelectorAll("#doc-list input[type=checkbox]")]
        .filter((b) => b.checked).map((b) => b.value);
      setSelected(ids);
    });
    const meta = [doc.publisher, doc.published].filter(Boolean).join(" · ");
    const read = el("button", { type: "button", class: "link read", "data-doc": doc.doc_id, text: t(state.lang, "read") });
    read.addEventListener("click", () => openSource({ doc_id: doc.doc_id, title: doc.title, n: "doc" }, read));
    list.append(el("li", { class: "doc", lang: (doc.languages || [])[0] || null },
      el("label", {}, box, el("span", { class: "doc-text" },
        el("span", { class: "doc-title", text: doc.title || doc.doc_id }),
        meta ? el("span", { class: "doc-meta", text: meta }) : null)),
      read));
  }
  renderFilterSummary();
  renderWelcomeTitle();
}

async function loadSources() {
  try {
    const body = await api("/sources");
    state.documents = body.documents || [];
    if (state.selected) {
      const known = new Set(state.documents.map((d) => d.doc_id));
      state.selected = new Set([...state.selected].filter((id) => known.has(id)));
    }
    renderSources();
  } catch (error) {
    $("doc-list").replaceChildren(el("li", { class: "hint", text: failureText(error, state.lang).title }));
  }
}

// --- welcome -----------------------------------------------------------------------------------------------

function renderWelcomeTitle() {
  const n = state.documents.length || (state.health && state.health.documents) || 0;
  $("welcome-title").textContent = n ? t(state.lang, "welcomeTitle", n) : t(state.lang, "title");
}

async function loadExamples() {
  try {
    const body = await api("/examples");
    const list = $("examples");
    list.replaceChildren();
    for (const example of body.examples || []) {
      const button = el("button", { type: "button", class: "example", text: example.question,
                                    title: example.title });
      button.addEventListener("click", () => ask(example.question));
      list.append(el("li", {}, button));
    }
    $("examples-head").hidden = !list.children.length;
  } catch {
    $("examples-head").hidden = true; // the welcome still reads fine without them
  }
}

function renderWelcome() {
  $("welcome").hidden = state.entries.length > 0;
}

// --- answers -------------------------------------------------------------------------------------------------

function kindOf(answer) {
  if (!answer.answerable) return "abstain";
  if (answer.conflicts && answer.conflicts.length) return "conflict";
  return "answerable";
}

function markerButton(citation, highlights = []) {
  const button = el("button", {
    type: "button",
    class: "marker",
    "data-n": String(citation.n),
    title: [citation.title, citation.publisher, citation.published].filter(Boolean).join(" — "),
    "aria-label": `[${citation.n}] ${citation.title || ""}`,
    text: `[${citation.n}]`,
  });
  button.addEventListener("click", () => openSource({ ...citation, highlights }, button));
  return button;
}

const ALNUM = /[0-9A-Za-z]/;

// Does text[at, end) stand as a whole figure or word: "2" is not inside "2022", "1.5" or "[2]"?
function standsAlone(text, at, end) {
  const before = text[at - 1] || "";
  const after = text[end] || "";
  if (ALNUM.test(text[at]) && (ALNUM.test(before) || (/[.,]/.test(before) && /\d/.test(text[at - 2] || "")))) return false;
  if (ALNUM.test(text[end - 1]) && (ALNUM.test(after) || (/[.,]/.test(after) && /\d/.test(text[end + 1] || "")))) return false;
  return true;
}

// Non-overlapping [start, end) ranges of `needles` in `text` (longest first, first whole occurrence of each,
// never inside the article's own note marks), in text order.
function findRanges(text, needles) {
  const ranges = [...text.matchAll(FOOTNOTE)].map((m) => [m.index, m.index + m[0].length, "fn"]);
  for (const needle of [...needles].sort((a, b) => b.length - a.length)) { // "about 5 yen" over "5 yen"
    if (!needle) continue;
    for (let at = text.indexOf(needle); at >= 0; at = text.indexOf(needle, at + 1)) {
      const end = at + needle.length;
      if (standsAlone(text, at, end) && !ranges.some(([s, e]) => at < e && end > s)) {
        ranges.push([at, end]);
        break;
      }
    }
  }
  return ranges.filter((r) => r.length === 2).sort((a, b) => a[0] - b[0]);
}

// Plain text with the articles' own note marks set apart (still plain text) into `parent`.
function appendWithFootnotes(parent, text) {
  let last = 0;
  for (const match of text.matchAll(FOOTNOTE)) {
    parent.append(document.createTextNode(text.slice(last, match.index)));
    parent.append(el("span", { class: "fn", text: match[0] }));
    last = match.index + match[0].length;
  }
  parent.append(document.createTextNode(text.slice(last)));
}

// A quote with the figures in it marked.
function quoteNode(quote, highlights, tag = "blockquote") {
  const node = el(tag, { class: "quote" });
  let last = 0;
  for (const [start, end] of findRanges(quote, highlights)) {
    appendWithFootnotes(node, quote.slice(last, start));
    node.append(el("mark", { class: "fig", text: quote.slice(start, end) }));
    last = end;
  }
  appendWithFootnotes(node, quote.slice(last));
  return node;
}

function highlightsFor(answer, n) {
  const figures = (answer.figures || []).filter((f) => f.citation === n).map((f) => f.text);
  for (const conflict of answer.conflicts || []) {
    for (const value of conflict.values) if (value.citation === n) figures.push(value.text);
  }
  if (!figures.length && answer.short_answer) figures.push(answer.short_answer);
  return figures;
}

// The article's title, unless the quote is its headline (the title would repeat it).
function titleNode(quote, title) {
  const squash = (s) => (s || "").replace(/\s+/g, " ").trim().toLowerCase();
  return title && squash(quote).startsWith(squash(title)) ? null : el("span", { class: "cite-title", text: title });
}

function sourceLine(c, lang) {
  return el("div", { class: "cite-source" },
    titleNode(c.quote, c.title || c.doc_id),
    el("span", { class: "cite-meta", text: [c.publisher || t(lang, "publisherUnknown"), c.published || t(lang, "dateUnknown")].join(" · ") }));
}

function confidenceNode(value, lang, kind) {
  if (typeof value !== "number" || !Number.isFinite(value)) return null;
  const clamped = Math.min(1, Math.max(0, value));
  const level = clamped >= 0.75 ? "high" : clamped >= 0.45 ? "medium" : "low";
  const percent = Math.round(clamped * 100);
  const bar = el("span", { class: "confidence-bar" }, el("span", { class: "confidence-fill" }));
  bar.firstChild.style.width = `${percent}%`;
  return el("span", { class: `confidence ${level}`, "data-level": level, "data-value": String(clamped),
                      title: t(lang, kind === "abstain" ? "confidenceAbstainHelp" : "confidenceHelp") },
    `${t(lang, "confidence")} ${percent}% (${t(lang, level)})`, bar);
}

// The citations that hold the short answer (its figures' citations, else the quotes that contain it): only
// they are marked beside it; a further passage cited for context keeps its mark in the list below.
function backing(answer, cites) {
  const figureCites = new Set((answer.figures || []).map((f) => f.citation));
  let held = cites.filter((c) => figureCites.has(c.n));
  if (!held.length && answer.short_answer) held = cites.filter((c) => c.quote.includes(answer.short_answer));
  return held.length ? held : cites;
}

function copyText(answer, lang) {
  const kind = kindOf(answer);
  const cites = answer.citations || [];
  const marks = (answer.short_answer ? backing(answer, cites) : cites).map((c) => `[${c.n}]`).join("");
  let head;
  if (kind === "abstain") head = t(lang, "abstainText");
  else if (kind === "conflict") {
    head = t(lang, "conflictLead") + "\n" + answer.conflicts[0].values.map((v) => {
      const c = cites.find((x) => x.n === v.citation);
      return `- ${v.text} [${v.citation}]${c ? ` (${[c.publisher || c.title, c.published].filter(Boolean).join(", ")})` : ""}`;
    }).join("\n");
  } else head = answer.short_answer ? `${answer.short_answer} ${marks}` : `${t(lang, "accordingTo")} ${marks}`;
  const lines = cites.map((c) => `[${c.n}] “${c.quote}” — ${[c.title, c.publisher, c.published].filter(Boolean).join(", ")}`);
  return [answer.question, "", head, "", ...lines].join("\n").trim();
}

async function copyToClipboard(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  const area = el("textarea", { class: "visually-hidden", readonly: true });
  area.value = text;
  document.body.append(area);
  area.select();
  const ok = document.execCommand("copy");
  area.remove();
  if (!ok) throw new Error("copy refused");
}

function actionsRow(entry) {
  const lang = entry.lang;
  const status = el("span", { class: "action-status", role: "status" });
  const copy = el("button", { type: "button", class: "action copy", title: t(lang, "copy") },
    icon(COPY, { filled: false }), el("span", { text: t(lang, "copy") }));
  copy.addEventListener("click", async () => {
    try {
      await copyToClipboard(copyText(entry.answer, lang));
      status.textContent = t(lang, "copied");
    } catch {
      status.textContent = t(lang, "copyFailed");
    }
  });
  const vote = (rating, label, cls) => {
    const button = el("button", { type: "button", class: `action vote ${cls}`, "data-rating": rating,
                                  "aria-pressed": String(entry.vote === rating), title: label, "aria-label": label },
      icon(THUMB, { cls }));
    button.addEventListener("click", () => sendVote(entry, rating, row, status));
    return button;
  };
  const row = el("footer", { class: "answer-actions" }, copy,
    vote("up", t(lang, "helpful"), "up"), vote("down", t(lang, "notHelpful"), "down"), status);
  return row;
}

async function sendVote(entry, rating, row, status) {
  const previous = entry.vote;
  entry.vote = rating;
  for (const b of row.querySelectorAll(".vote")) b.setAttribute("aria-pressed", String(b.dataset.rating === rating));
  status.textContent = "";
  try {
    await api("/feedback", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ id: entry.id, rating, question: entry.question, answer: entry.answer }),
    });
    status.textContent = t(entry.lang, "thanks");
    saveConversation();
  } catch (error) {
    entry.vote = previous;
    for (const b of row.querySelectorAll(".vote")) b.setAttribute("aria-pressed", String(b.dataset.rating === previous));
    status.textContent = t(entry.lang, "voteFailed", failureText(error, entry.lang).title);
  }
}

function renderAnswer(entry) {
  const { answer, lang } = entry;
  const kind = kindOf(answer);
  const cites = answer.citations || [];
  const byNumber = new Map(cites.map((c) => [c.n, c]));
  const card = el("article", { class: `message answer ${kind}`, "data-kind": kind, "data-entry": entry.id, lang });

  const head = el("header", { class: "answer-head" }, el("span", { class: "badge", text: t(lang, kind) }),
    confidenceNode(answer.confidence, lang, kind));
  if (entry.filters) head.append(el("span", { class: "filter-note", text: `${t(lang, "filterNote")}: ${describeFilters(entry.filters, lang)}` }));
  if (answer.timings_ms && answer.timings_ms.total !== undefined) {
    head.append(el("span", { class: "timing", text: `${Math.round(answer.timings_ms.total)} ms` }));
  }
  card.append(head);

  const shown = new Set(); // citations whose quote is already on the card
  if (kind === "abstain") {
    card.append(el("p", { class: "answer-text", text: t(lang, "abstainText") }));
  } else if (kind === "conflict") {
    card.append(el("p", { class: "answer-text lead", text: t(lang, "conflictLead") }));
    for (const conflict of answer.conflicts) {
      const grid = el("div", { class: "conflict-grid" });
      for (const value of conflict.values) {
        const c = byNumber.get(value.citation);
        if (!c) continue;
        shown.add(c.n);
        grid.append(el("section", { class: "side", "data-n": String(c.n) },
          el("p", { class: "side-value" }, el("span", { class: "value", text: value.text }), " ", markerButton(c, highlightsFor(answer, c.n))),
          quoteNode(c.quote, highlightsFor(answer, c.n)),
          sourceLine(c, lang)));
      }
      card.append(grid);
    }
  } else {
    const p = el("p", { class: "answer-text" });
    if (answer.short_answer) p.append(el("span", { class: "short", text: answer.short_answer }), " ");
    else p.append(el("span", { class: "according", text: t(lang, "accordingTo") }), " ");
    for (const c of answer.short_answer ? backing(answer, cites) : cites) p.append(markerButton(c, highlightsFor(answer, c.n)));
    card.append(p);
  }

  const rest = cites.filter((c) => !shown.has(c.n));
  if (rest.length) {
    const list = el("ol", { class: "citations" });
    for (const c of rest) {
      list.append(el("li", { "data-n": String(c.n) }, markerButton(c, highlightsFor(answer, c.n)),
        el("div", { class: "cite-body" }, quoteNode(c.quote, highlightsFor(answer, c.n)), sourceLine(c, lang))));
    }
    card.append(list);
  }

  if (kind === "abstain" && answer.related && answer.related.length) {
    // Passages near the question, offered to read; they are not an answer.
    const list = el("ul", { class: "related" });
    answer.related.forEach((r, i) => {
      const passage = { ...r, n: `r${i + 1}` };
      const button = el("button", { type: "button", class: "marker open", "data-n": passage.n, text: t(lang, "open") });
      button.addEventListener("click", () => openSource(passage, button));
      list.append(el("li", {}, button, el("div", { class: "cite-body" },
        quoteNode(r.quote, [], "q"), el("div", { class: "cite-source" }, titleNode(r.quote, r.title)))));
    });
    card.append(el("p", { class: "related-head", text: t(lang, "related") }), list);
  }
  card.append(actionsRow(entry));
  return card;
}

// --- errors ----------------------------------------------------------------------------------------------------

function failureText(error, lang) {
  if (!(error instanceof ApiFailure)) return { title: String(error && error.message || error), detail: "" };
  if (error.timeout) return { title: t(lang, "errTimeout", Math.round(ASK_TIMEOUT_MS / 1000)), detail: t(lang, "errTimeoutDetail") };
  if (error.network) return { title: t(lang, "errNetwork"), detail: t(lang, "errNetworkDetail", error.detail || "network error") };
  const title = error.status === 401 ? t(lang, "errKey") : t(lang, "errHttp", error.status, error.statusText);
  const detail = error.detail || (error.retryAfter ? t(lang, "retryAfter", error.retryAfter) : "");
  return { title, detail };
}

function errorCard(entry, error) {
  const { title, detail } = failureText(error, entry.lang);
  const retry = el("button", { type: "button", class: "retry", text: t(entry.lang, "retry") });
  const card = el("div", { class: "message error", role: "alert", lang: entry.lang,
                           "data-status": String(error.status || 0), "data-network": String(Boolean(error.network)) },
    el("p", { class: "error-title", text: title }), detail ? el("p", { class: "error-detail", text: detail }) : null,
    el("p", { class: "error-actions" }, retry));
  retry.addEventListener("click", () => {
    if ($("question").value.trim() === entry.question) $("question").value = "";
    card.replaceWith(pendingCard(entry));
    send(entry);
  });
  return card;
}

// --- asking ------------------------------------------------------------------------------------------------------

function pendingCard(entry) {
  return el("div", { class: "message pending", "data-entry": entry.id, lang: entry.lang, text: t(entry.lang, "searching") });
}

function history(before) {
  const turns = [];
  for (const e of state.entries) {
    if (e === before) break;
    if (e.answer) turns.push({ role: "user", content: e.question }, { role: "assistant", content: e.answer.answer });
  }
  return turns.slice(-20);
}

function scrollToCard(card) {
  card.scrollIntoView({ block: "start", behavior: reducedMotion() ? "auto" : "smooth" });
}

async function send(entry) {
  $("ask-button").disabled = true;
  const body = { question: entry.question, history: history(entry) };
  if (entry.filters) body.filters = entry.filters;
  let card;
  try {
    entry.answer = await api("/ask", { method: "POST", headers: { "Content-Type": "application/json" },
                                       body: JSON.stringify(body) }, ASK_TIMEOUT_MS);
    card = renderAnswer(entry);
    saveConversation();
  } catch (error) {
    card = errorCard(entry, error);
    if (!$("question").value.trim()) $("question").value = entry.question; // nothing typed is lost
  } finally {
    $("ask-button").disabled = false;
  }
  const pending = document.querySelector(`.message.pending[data-entry="${entry.id}"]`);
  if (pending) pending.replaceWith(card);
  else $("entries").append(card);
  scrollToCard(card);
}

function ask(question) {
  const lang = languageOf(question);
  if (state.selected && state.selected.size === 0) {
    $("filter-summary").hidden = false;
    $("filter-text").textContent = t(lang, "noneSelected");
    return;
  }
  const entry = { id: newId(), question, lang, filters: activeFilters(), answer: null, vote: null };
  state.entries.push(entry);
  if (lang !== state.lang) applyLanguage(lang);
  renderWelcome();
  const bubble = el("div", { class: "message user", lang, "data-entry": entry.id, text: question });
  const pending = pendingCard(entry);
  $("entries").append(bubble, pending);
  scrollToCard(bubble);
  send(entry);
}

function restoreConversation() {
  state.entries = loadConversation();
  for (const entry of state.entries) {
    $("entries").append(el("div", { class: "message user", lang: entry.lang, "data-entry": entry.id, text: entry.question }),
      renderAnswer(entry));
  }
  renderWelcome();
  const last = state.entries[state.entries.length - 1];
  if (last) {
    applyLanguage(last.lang);
    const cards = document.querySelectorAll("article.answer");
    cards[cards.length - 1].scrollIntoView({ block: "start" });
  }
}

// --- the source panel ----------------------------------------------------------------------------------------

function showPanel(panel, show) {
  panel.hidden = !show;
  const overlay = smallScreen() && (!$("source").hidden || $("sidebar").classList.contains("open"));
  $("backdrop").hidden = !overlay;
  document.body.classList.toggle("overlay-open", overlay);
}

async function openSource(citation, button = null) {
  document.querySelectorAll(".marker.active, .read.active").forEach((b) => b.classList.remove("active"));
  if (button) button.classList.add("active");
  const lang = button && button.closest("[lang]") ? button.closest("[lang]").lang : state.lang;
  if (smallScreen()) setSidebar(false);
  const panel = $("source");
  showPanel(panel, true);
  openSource.opener = button;
  $("source-title").textContent = citation.title || citation.doc_id;
  $("source-meta").textContent = t(lang, "loading");
  $("source-text").replaceChildren();
  if (smallScreen()) $("source-close").focus({ preventScroll: true });
  try {
    // The whole text (asked for without a span), the quoted range marked here.
    const doc = await api(`/sources/${encodeURIComponent(citation.doc_id)}`);
    $("source-title").textContent = doc.title;
    $("source-meta").textContent =
      [doc.publisher || t(lang, "publisherUnknown"), doc.published || t(lang, "dateUnknown")].join(" · ");
    const { start, end } = citation;
    const hasSpan = Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start <= end && end <= doc.text.length;
    if (!hasSpan) {
      $("source-text").replaceChildren(document.createTextNode(doc.text));
      $("source-text").scrollTop = 0;
      return;
    }
    doc.span = { start, end };
    const quote = doc.text.slice(start, end);
    const mark = el("mark", { id: "highlight", "data-n": String(citation.n) });
    const figures = citation.highlights || [];
    let last = 0;
    for (const [s, e] of findRanges(quote, figures)) {
      mark.append(document.createTextNode(quote.slice(last, s)), el("strong", { class: "fig", text: quote.slice(s, e) }));
      last = e;
    }
    mark.append(document.createTextNode(quote.slice(last)));
    $("source-text").replaceChildren(
      document.createTextNode(doc.text.slice(0, doc.span.start)),
      mark,
      document.createTextNode(doc.text.slice(doc.span.end)),
    );
    mark.scrollIntoView({ block: "center" });
  } catch (error) {
    $("source-meta").textContent = t(lang, "sourceError", failureText(error, lang).title);
  }
}

function closeSource() {
  showPanel($("source"), false);
  const opener = openSource.opener;
  if (opener && opener.isConnected && smallScreen()) opener.focus({ preventScroll: true });
}

function setSidebar(open) {
  $("sidebar").classList.toggle("open", open);
  $("sidebar").classList.toggle("closed", !open);
  $("sources-toggle").setAttribute("aria-expanded", String(open));
  showPanel($("source"), !$("source").hidden);
}

// --- start -----------------------------------------------------------------------------------------------------

async function showStatus() {
  try {
    state.health = await api("/health");
    renderStatus();
    renderWelcomeTitle();
  } catch (error) {
    $("status").textContent = failureText(error, state.lang).title;
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
  loadFilters();
  applyLanguage(browserLanguage());
  setSidebar(!smallScreen());
  $("ask-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const question = $("question").value.trim();
    if (!question) return;
    $("question").value = "";
    ask(question);
  });
  $("question").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("ask-form").requestSubmit();
    }
  });
  $("new-chat").addEventListener("click", () => {
    state.entries = [];
    localStorage.removeItem(CONVERSATION_STORAGE);
    $("entries").replaceChildren();
    showPanel($("source"), false);
    renderWelcome();
  });
  $("source-close").addEventListener("click", closeSource);
  $("backdrop").addEventListener("click", () => { closeSource(); setSidebar(false); });
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    if (!$("source").hidden) closeSource();
    else if (smallScreen()) setSidebar(false);
  });
  $("sources-toggle").addEventListener("click", () => setSidebar(!$("sidebar").classList.contains("open")));
  $("sidebar-close").addEventListener("click", () => setSidebar(false));
  $("date-from").addEventListener("change", () => { state.dateFrom = $("date-from").value; saveFilters(); renderFilterSummary(); });
  $("date-to").addEventListener("change", () => { state.dateTo = $("date-to").value; saveFilters(); renderFilterSummary(); });
  $("docs-all").addEventListener("click", () => setSelected(state.documents.map((d) => d.doc_id)));
  $("docs-none").addEventListener("click", () => setSelected([]));
  const clear = () => { state.dateFrom = ""; state.dateTo = ""; setSelected(state.documents.map((d) => d.doc_id)); };
  $("filters-clear").addEventListener("click", clear);
  $("filter-summary-clear").addEventListener("click", clear);
  $("key-toggle").addEventListener("click", () => { $("key-form").hidden = !$("key-form").hidden; });
  $("api-key").value = apiKey();
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    localStorage.setItem(KEY_STORAGE, $("api-key").value.trim());
    $("key-form").hidden = true;
    showStatus();
    loadSources();
    loadExamples();
  });
  $("key-clear").addEventListener("click", () => {
    localStorage.removeItem(KEY_STORAGE);
    $("api-key").value = "";
  });
  restoreConversation();
  showStatus();
  loadSources();
  loadExamples();
  openLinkedSource();
}

document.addEventListener("DOMContentLoaded", setup);
