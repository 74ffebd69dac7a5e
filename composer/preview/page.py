"""The preview page: a static shell that draws each build the server announces over /events."""

from __future__ import annotations

# One self-contained page (no network, no build step). The server never fills it in: all issue
# text arrives as JSON and is set with textContent, so nothing in an issue can inject markup here.
PAGE_HTML = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Preview</title>
<link rel="icon" href="data:,">
<style>
  :root { --line: #d0d7de; --muted: #57606a; --ink: #1f2328; --accent: #0b5cad; }
  * { box-sizing: border-box; }
  html, body { margin: 0; height: 100%; }
  body { display: flex; flex-direction: column; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: var(--ink); background: #f6f8fa; }
  header.bar { display: flex; align-items: center; gap: 16px; padding: 6px 16px; background: #0b3d6e; color: #fff; }
  header.bar > * { white-space: nowrap; }
  header.bar strong { font-size: 15px; }
  #file { min-width: 0; overflow: hidden; text-overflow: ellipsis; }
  header.bar nav { margin-left: auto; display: flex; gap: 12px; }
  header.bar a { color: #d6e4f2; }
  #status { font-size: 13px; color: #d6e4f2; }
  body.broken #status, body.offline #status { color: #ffd8a8; font-weight: 600; }
  main { flex: 1; display: flex; min-height: 0; }
  .mail { flex: 1; display: flex; flex-direction: column; min-width: 0; }
  .inbox { display: flex; gap: 12px; align-items: flex-start; padding: 14px 16px; background: #fff; border-bottom: 1px solid var(--line); }
  .avatar { flex: none; width: 40px; height: 40px; border-radius: 50%; background: #0b3d6e; color: #fff; display: grid; place-items: center; font-size: 18px; font-weight: 600; }
  .lines { min-width: 0; flex: 1; }
  .lines > div { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
  #from-email, #date { color: var(--muted); }
  #date { float: right; }
  #subject { font-size: 16px; font-weight: 600; }
  #preheader { color: var(--muted); }
  .toolbar { display: flex; flex-wrap: wrap; gap: 8px; justify-content: space-between; padding: 8px 16px; border-bottom: 1px solid var(--line); background: #fff; }
  .group { display: inline-flex; border: 1px solid var(--line); border-radius: 6px; overflow: hidden; }
  .group button { font: inherit; border: 0; border-right: 1px solid var(--line); background: #fff; padding: 4px 12px; cursor: pointer; color: var(--ink); }
  .group button:last-child { border-right: 0; }
  .group button[aria-pressed="true"], .group button[aria-selected="true"] { background: var(--accent); color: #fff; }
  .stage { flex: 1; min-height: 0; overflow: auto; padding: 16px; display: flex; }
  .stage > * { margin: 0 auto; }  /* not justify-content: a wide child must stay scrollable */
  .stage iframe { border: 1px solid var(--line); background: #fff; height: 100%; min-height: 400px; }
  #email-frame.desktop { width: 100%; min-width: 640px; }
  #email-frame.phone { box-sizing: content-box; width: 375px; height: calc(100% - 20px); border: 10px solid #1f2328; border-radius: 24px; }
  #email-frame.dark { background: #111418; }
  #web-frame { width: 100%; }
  #text { align-self: flex-start; min-width: min(100%, 60ch); background: #fff; border: 1px solid var(--line); padding: 16px; white-space: pre; font: 13px/1.5 ui-monospace, Menlo, Consolas, monospace; }
  #problems { margin: 16px; padding: 12px 16px; background: #fff5f5; border: 1px solid #ff8182; border-radius: 6px; }
  #problems h2 { margin: 0 0 4px; font-size: 16px; color: #a40e26; }
  #problems ul { margin: 8px 0 0; padding-left: 20px; }
  #problems code { white-space: pre-wrap; overflow-wrap: anywhere; }
  aside { width: 340px; flex: none; overflow: auto; border-left: 1px solid var(--line); background: #fff; padding: 12px 16px; }
  aside h2 { font-size: 15px; margin: 0 0 8px; }
  #checks { list-style: none; margin: 0; padding: 0; }
  #checks li { display: flex; gap: 8px; padding: 6px 0; border-bottom: 1px solid #eaeef2; }
  #checks .icon { flex: none; width: 18px; text-align: center; font-weight: 700; }
  #checks .ok .icon { color: #1a7f37; }
  #checks .info .icon { color: var(--accent); }
  #checks .warning .icon { color: #9a6700; }
  #checks .code { color: var(--muted); font-size: 12px; }
  body.broken .inbox, body.broken #checks { opacity: 0.45; }
  #stale { margin: 0 0 8px; color: var(--muted); font-size: 13px; }
  [hidden] { display: none !important; }
</style>
</head>
<body class="offline">
<header class="bar">
  <strong>compose preview</strong><span id="file"></span><span id="status">connecting…</span>
  <nav><a href="/email.html" target="_blank">email.html</a><a href="/email.txt" target="_blank">email.txt</a><a href="/web.html" target="_blank">web.html</a><a href="/message.eml" target="_blank">message.eml</a></nav>
</header>
<main>
  <section class="mail">
    <div class="inbox" aria-label="As the inbox shows it">
      <div class="avatar" id="avatar" aria-hidden="true">?</div>
      <div class="lines">
        <div><strong id="from-name"></strong> <span id="from-email"></span><span id="date"></span></div>
        <div id="subject"></div>
        <div id="preheader"></div>
      </div>
    </div>
    <div class="toolbar">
      <div class="group" role="tablist">
        <button role="tab" data-tab="email" aria-selected="true">Email</button>
        <button role="tab" data-tab="text" aria-selected="false">Plain text</button>
        <button role="tab" data-tab="web" aria-selected="false">Web version</button>
      </div>
      <div class="group" id="views">
        <button data-device="desktop" aria-pressed="true">Desktop</button>
        <button data-device="phone" aria-pressed="false">Phone</button>
        <button id="dark" aria-pressed="false">Dark</button>
      </div>
    </div>
    <div id="problems" role="alert" hidden>
      <h2>The issue does not build</h2>
      <div>Fix the file: the preview comes back by itself when it builds again.</div>
      <ul id="problem-list"></ul>
    </div>
    <div class="stage" id="panel-email"><iframe id="email-frame" class="desktop" title="Email"></iframe></div>
    <div class="stage" id="panel-text" hidden><pre id="text"></pre></div>
    <div class="stage" id="panel-web" hidden><iframe id="web-frame" title="Web version"></iframe></div>
  </section>
  <aside>
    <h2>Checks</h2>
    <p id="stale" hidden>From the last build that worked.</p>
    <ul id="checks"></ul>
  </aside>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const ICONS = { ok: "\u2713", info: "i", warning: "!" };
let state = null, tab = "email", dark = false;
const loaded = { email: -1, text: -1, web: -1 };

function show(s) {
  state = s;
  document.body.classList.remove("offline");
  document.body.classList.toggle("broken", !s.ok);
  $("file").textContent = s.file;
  $("status").textContent = s.ok
    ? `built ${s.finished} in ${s.seconds.toFixed(2)} s, mode ${s.mode}`
    : `${s.problems.length} problem(s) at ${s.finished}`;
  $("problems").hidden = s.ok;
  $("stale").hidden = s.ok || !$("checks").children.length;
  $("problem-list").replaceChildren(...s.problems.map((p) => {
    const li = document.createElement("li"), code = document.createElement("code");
    code.textContent = p; li.append(code); return li;
  }));
  if (s.ok) {
    document.title = `Preview \u00b7 ${s.subject}`;
    $("avatar").textContent = (s.from_name.trim()[0] || "?").toUpperCase();
    $("from-name").textContent = s.from_name;
    $("from-email").textContent = `<${s.from_email}>`;
    $("date").textContent = s.date;
    $("subject").textContent = s.subject;
    $("preheader").textContent = s.preheader || "(no preheader: clients show the first text of the email)";
    $("checks").replaceChildren(...s.checks.map((c) => {
      const li = document.createElement("li"), icon = document.createElement("span");
      const body = document.createElement("div"), code = document.createElement("div");
      li.className = c.level; li.dataset.code = c.code;
      icon.className = "icon"; icon.textContent = ICONS[c.level] || "?";
      code.className = "code"; code.textContent = c.code;
      body.append(c.message, code); li.append(icon, body); return li;
    }));
  }
  document.body.dataset.version = s.version;
  refresh();
}

function showPanels() {
  const ok = !state || state.ok;
  for (const name of ["email", "text", "web"]) $("panel-" + name).hidden = !ok || name !== tab;
  $("views").style.visibility = tab === "email" ? "visible" : "hidden";
}

// Load the visible view if it shows an older build; hidden views catch up when opened.
function refresh() {
  showPanels();
  if (!state || !state.ok || loaded[tab] === state.version) return;
  const v = state.version;
  loaded[tab] = v;
  if (tab === "text") {
    fetch(`/email.txt?v=${v}`)
      .then((r) => r.text())
      .then((t) => { $("text").textContent = t; })
      .catch(() => { loaded.text = -1; });  // the server went away; the next build retries
  } else {
    loadFrame($(tab + "-frame"), `/${tab}.html?v=${v}`, v);
  }
}

// Reload a frame where the reader was, so an edit to the tenth article keeps it in view.
function loadFrame(frame, url, version) {
  let y = 0;
  try { y = frame.contentWindow.scrollY; } catch (e) { y = 0; }
  frame.onload = () => {
    if (frame.id === "email-frame" && dark) applyDark(frame);
    try { frame.contentWindow.scrollTo(0, y); } catch (e) { /* not loaded */ }
    frame.dataset.version = version;
  };
  frame.src = url;
}

// Dark mode as Apple Mail and iOS Mail do it: the email's own prefers-color-scheme: dark rules apply.
function applyDark(frame) {
  const doc = frame.contentDocument;
  if (!doc) return;
  for (const sheet of doc.styleSheets) {
    let rules;
    try { rules = sheet.cssRules; } catch (e) { continue; }
    for (const rule of rules) {
      if (!rule.media || !/prefers-color-scheme/i.test(rule.media.mediaText)) continue;
      rule.media.mediaText = rule.media.mediaText
        .replace(/\(\s*prefers-color-scheme\s*:\s*dark\s*\)/gi, "(min-width: 0px)")
        .replace(/\(\s*prefers-color-scheme\s*:\s*light\s*\)/gi, "(max-width: -1px)");
    }
  }
}

function setDevice(device) {
  const frame = $("email-frame");
  frame.classList.toggle("desktop", device === "desktop");
  frame.classList.toggle("phone", device === "phone");
  for (const b of document.querySelectorAll("[data-device]")) b.setAttribute("aria-pressed", b.dataset.device === device);
}

function setDark(on) {
  dark = on;
  $("dark").setAttribute("aria-pressed", on);
  $("email-frame").classList.toggle("dark", on);
  loaded.email = -1;  // reload: undoing the rewritten rules is a fresh load
  refresh();
}

function setTab(name) {
  tab = name;
  for (const b of document.querySelectorAll("[data-tab]")) b.setAttribute("aria-selected", b.dataset.tab === name);
  refresh();
}

for (const b of document.querySelectorAll("[data-tab]")) b.onclick = () => setTab(b.dataset.tab);
for (const b of document.querySelectorAll("[data-device]")) b.onclick = () => setDevice(b.dataset.device);
$("dark").onclick = () => setDark(!dark);

// Server-sent events: each build's state; the browser reconnects by itself if the server restarts.
function connect() {
  const events = new EventSource("/events");
  // After a reconnect the server may be a new one whose versions start again: reload every view.
  events.onopen = () => { for (const name in loaded) loaded[name] = -1; };
  events.onmessage = (e) => show(JSON.parse(e.data));
  events.onerror = () => {
    document.body.classList.add("offline");
    $("status").textContent = "preview server stopped; reconnecting\u2026";
  };
}
connect();
</script>
</body>
</html>
"""
