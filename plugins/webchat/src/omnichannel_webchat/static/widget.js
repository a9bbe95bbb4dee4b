/*! omnichannel web chat widget. No dependencies, no build step.
 * Embed: <script src="https://YOUR-GATEWAY/channels/KEY/widget.js" async></script>
 * Options (data- attributes on the tag): data-lang="en|zh-Hans|zh-Hant", data-open="true",
 * data-title="...". API: window.OmnichannelChat.open() / .close() / .send(text).
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.OmnichannelChat) return;
  var ds = script.dataset || {};
  var base = script.src.replace(/\/widget\.js(\?.*)?$/, "");
  var wsBase = base.replace(/^http/, "ws");
  var STORE = "omniwebchat:" + base;

  var STRINGS = {
    en: {title: "Chat with us", open: "Open chat", close: "Close chat", placeholder: "Type a message…",
      send: "Send", attach: "Attach a file", intro: "Tell us who you are, so we can follow up by email if we get cut off.",
      name: "Name", email: "Email", start: "Start chat", skip: "Skip", typing: "{name} is typing…",
      seen: "Seen", offline: "Reconnecting…", failed: "Not sent. Press to retry.", tooBig: "That file is too large.",
      badType: "That file type is not accepted.", slow: "You are sending messages too quickly.", agent: "Agent",
      welcome: "Hi! How can we help?", unread: "new messages", unreadOne: "new message", sending: "Sending…", uploadFailed: "Upload failed.",
      badEmail: "Please enter a valid email address.", log: "Conversation", required: "Please fill in both fields."},
    "zh-Hans": {title: "与我们聊天", open: "打开聊天", close: "关闭聊天", placeholder: "输入消息…", send: "发送",
      attach: "添加附件", intro: "请留下您的姓名和邮箱，以便断线后我们通过邮件联系您。", name: "姓名", email: "邮箱",
      start: "开始聊天", skip: "跳过", typing: "{name}正在输入…", seen: "已读", offline: "正在重新连接…",
      failed: "未发送，点按重试。", tooBig: "文件太大。", badType: "不支持此文件类型。", slow: "您发送消息太快了。",
      agent: "客服", welcome: "您好！有什么可以帮您？", unread: "条新消息", unreadOne: "条新消息", sending: "发送中…", uploadFailed: "上传失败。",
      badEmail: "请输入有效的邮箱地址。", log: "对话", required: "请填写两项内容。"},
    "zh-Hant": {title: "與我們聊天", open: "開啟聊天", close: "關閉聊天", placeholder: "輸入訊息…", send: "傳送",
      attach: "附加檔案", intro: "請留下您的姓名和電子郵件，以便斷線後我們透過電子郵件聯絡您。", name: "姓名",
      email: "電子郵件", start: "開始聊天", skip: "略過", typing: "{name}正在輸入…", seen: "已讀",
      offline: "正在重新連線…", failed: "未傳送，點按重試。", tooBig: "檔案太大。", badType: "不接受此檔案類型。",
      slow: "您傳送訊息太快了。", agent: "客服", welcome: "您好！有什麼可以幫您？", unread: "則新訊息", unreadOne: "則新訊息",
      sending: "傳送中…", uploadFailed: "上傳失敗。", badEmail: "請輸入有效的電子郵件地址。", log: "對話",
      required: "請填寫兩個欄位。"}
  };

  function pickLang() {
    var c = [ds.lang, document.documentElement.lang].concat(navigator.languages || [navigator.language]);
    for (var i = 0; i < c.length; i++) {
      var l = (c[i] || "").toLowerCase();
      if (!l) continue;
      if (l.indexOf("zh") === 0) return /hant|-tw|-hk|-mo/.test(l) ? "zh-Hant" : "zh-Hans";
      if (l.indexOf("en") === 0) return "en";
    }
    return "en";
  }
  var lang = pickLang();
  var T = STRINGS[lang];

  // ---- state ---------------------------------------------------------------------------
  var saved = {};
  try { saved = JSON.parse(localStorage.getItem(STORE) || "{}") || {}; } catch (e) { saved = {}; }
  var S = {token: saved.token || null, last: saved.last || null, config: {}, ws: null, ready: false,
    polling: false, sig: null, wsFailures: 0, backoff: 1000, outbox: [], seenIds: {}, unread: 0, open: false,
    started: false, stopped: false, typingSent: false, typingTimer: null, agentTypingTimer: null,
    pendingRead: [], pendingDelivered: [], email: null, name: null};

  function persist() {
    try { localStorage.setItem(STORE, JSON.stringify({token: S.token, last: S.last})); } catch (e) { /* private mode */ }
  }
  function uid() {
    var a = new Uint8Array(12); (window.crypto || window.msCrypto).getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  // ---- DOM helpers ---------------------------------------------------------------------
  function el(tag, attrs, kids) {
    var n = document.createElement(tag);
    for (var k in attrs || {}) {
      if (k === "text") n.textContent = attrs[k];
      else if (k.indexOf("on") === 0) n.addEventListener(k.slice(2), attrs[k]);
      else n.setAttribute(k, attrs[k]);
    }
    (kids || []).forEach(function (c) { if (c) n.appendChild(c); });
    return n;
  }
  function txt(s) { return document.createTextNode(s); }
  function icon(d) {
    var ns = "http://www.w3.org/2000/svg", svg = document.createElementNS(ns, "svg"), p = document.createElementNS(ns, "path");
    svg.setAttribute("viewBox", "0 0 24 24"); svg.setAttribute("width", "22"); svg.setAttribute("height", "22");
    svg.setAttribute("aria-hidden", "true"); svg.setAttribute("focusable", "false");
    p.setAttribute("d", d); p.setAttribute("fill", "currentColor"); svg.appendChild(p); return svg;
  }
  function safeLink(label, href) {
    if (!/^(https?:\/\/|mailto:)/i.test(href)) return txt(label);
    return el("a", {href: href, target: "_blank", rel: "noopener noreferrer nofollow", text: label});
  }
  // The markdown subset: **bold**, *italic*, _italic_, `code`, [label](https://…), bare links,
  // "- " lists and line breaks. Built from DOM nodes: agent text can never inject HTML.
  var INLINE = /(\*\*([^*\n]+)\*\*)|(`([^`\n]+)`)|(\[([^\]\n]+)\]\(([^)\s]+)\))|(https?:\/\/[^\s<>"']*[^\s<>"'.,;:!?)\]])|(\*([^*\s][^*\n]*)\*)|(_([^_\s][^_\n]*)_)/g;
  function inline(s, parent, md) {
    var last = 0, m;
    var re = new RegExp(INLINE.source, "g");
    while ((m = re.exec(s))) {
      if (!md && !m[8]) continue;
      if (m.index > last) parent.appendChild(txt(s.slice(last, m.index)));
      if (m[1]) parent.appendChild(el("strong", {text: m[2]}));
      else if (m[3]) parent.appendChild(el("code", {text: m[4]}));
      else if (m[5]) parent.appendChild(safeLink(m[6], m[7]));
      else if (m[8]) parent.appendChild(safeLink(m[8], m[8]));
      else if (m[9]) parent.appendChild(el("em", {text: m[10]}));
      else if (m[11]) parent.appendChild(el("em", {text: m[12]}));
      last = re.lastIndex;
    }
    if (last < s.length) parent.appendChild(txt(s.slice(last)));
  }
  function renderText(text, md, parent) {
    var list = null;
    text.split("\n").forEach(function (line, i) {
      var item = md && /^\s*[-*]\s+(.*)$/.exec(line);
      if (item) {
        if (!list) { list = el("ul"); parent.appendChild(list); }
        var li = el("li"); inline(item[1], li, md); list.appendChild(li); return;
      }
      if (i > 0 && !list) parent.appendChild(el("br"));
      list = null;
      inline(line, parent, md);
    });
  }

  // ---- the UI ----------------------------------------------------------------------------
  var host = el("div", {id: "omnichannel-webchat"});
  var root = host.attachShadow ? host.attachShadow({mode: "open"}) : host;
  var css = ":host{all:initial}*{box-sizing:border-box;font:14px/1.4 system-ui,-apple-system,'Segoe UI','PingFang SC','Microsoft JhengHei',sans-serif}strong,b{font-weight:700}em,i{font-style:italic}" +
    ".launch{position:fixed;right:20px;bottom:20px;width:56px;height:56px;border-radius:50%;border:0;background:#1d4ed8;color:#fff;font-size:24px;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25);z-index:2147483000;display:flex;align-items:center;justify-content:center}" +
    ".launch:focus-visible,button:focus-visible,textarea:focus-visible,input:focus-visible,a:focus-visible{outline:3px solid #f59e0b;outline-offset:2px}" +
    ".badge{position:absolute;top:-4px;right:-4px;background:#dc2626;color:#fff;border-radius:10px;padding:0 6px;font-size:12px}" +
    ".panel{position:fixed;right:20px;bottom:88px;width:360px;max-width:calc(100vw - 24px);height:520px;max-height:calc(100vh - 110px);display:flex;flex-direction:column;background:#fff;color:#111;border-radius:12px;box-shadow:0 8px 30px rgba(0,0,0,.3);overflow:hidden;z-index:2147483000}" +
    "[hidden]{display:none!important}.head{display:flex;align-items:center;justify-content:space-between;background:#1d4ed8;color:#fff;padding:10px 12px}" +
    ".head h2{margin:0;font-size:16px;font-weight:600}.x{background:none;border:0;color:#fff;font-size:20px;cursor:pointer}" +
    ".log{flex:1;overflow-y:auto;padding:12px;background:#f8fafc}.msg{max-width:80%;margin:6px 0;padding:8px 10px;border-radius:10px;white-space:normal;word-wrap:break-word}" +
    ".msg.in{margin-left:auto;background:#1d4ed8;color:#fff}.msg.in a{color:#fff}.msg.out{background:#e2e8f0}.msg.sys{background:none;color:#555;font-style:italic;text-align:center;margin:6px auto}" +
    ".msg.pending{opacity:.6}.msg.failed{border:1px solid #dc2626;cursor:pointer}.msg ul{margin:4px 0;padding-left:18px}.msg code{background:rgba(0,0,0,.08);padding:0 3px;border-radius:3px;font-family:monospace}" +
    ".msg img{max-width:100%;border-radius:6px;display:block}.who{font-size:12px;color:#555;margin-bottom:2px}.meta{font-size:11px;opacity:.75;margin-top:2px}" +
    ".acts{display:flex;flex-wrap:wrap;gap:6px;margin-top:6px}.acts button{border:1px solid #1d4ed8;background:#fff;color:#1d4ed8;border-radius:14px;padding:3px 10px;cursor:pointer}" +
    ".typing,.status{font-size:12px;color:#555;padding:2px 12px;min-height:18px}.form{display:flex;gap:6px;padding:8px;border-top:1px solid #e2e8f0}" +
    "textarea{flex:1;resize:none;border:1px solid #cbd5e1;border-radius:8px;padding:6px 8px;height:40px}.btn{border:0;border-radius:8px;background:#1d4ed8;color:#fff;padding:0 12px;cursor:pointer}" +
    ".clip{border:1px solid #cbd5e1;background:#fff;color:#334155;border-radius:8px;cursor:pointer;padding:0 8px;display:flex;align-items:center}" +
    ".pre{padding:12px;display:flex;flex-direction:column;gap:8px}.pre label{display:flex;flex-direction:column;gap:2px}.pre input{border:1px solid #cbd5e1;border-radius:6px;padding:6px}" +
    ".pre .row{display:flex;gap:8px}.pre .btn{padding:8px 12px}.link{background:none;border:0;color:#1d4ed8;cursor:pointer;text-decoration:underline}.err{color:#b91c1c;font-size:12px;min-height:16px}" +
    ".sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}" +
    // a phone: the panel takes the width, the launcher stays in the corner
    "@media (max-width:480px){.panel{left:8px;right:8px;width:auto;max-width:none;bottom:80px;height:auto;top:8px;max-height:none}.launch{right:12px;bottom:12px}}";
  root.appendChild(el("style", {text: css}));
  var title = ds.title || T.title;
  var badge = el("span", {"class": "badge", hidden: ""});
  var launcher = el("button", {"class": "launch", type: "button", "aria-label": T.open, "aria-expanded": "false",
    "aria-controls": "omni-panel", onclick: function () { S.open ? close() : open(); }}, [icon("M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z"), badge]);
  var log = el("div", {"class": "log", role: "log", "aria-live": "polite", "aria-label": T.log, tabindex: "0"});
  var typingLine = el("div", {"class": "typing", "aria-live": "polite"});
  var statusLine = el("div", {"class": "status", role: "status"});
  var input = el("textarea", {rows: "1", placeholder: T.placeholder, "aria-label": T.placeholder});
  var file = el("input", {type: "file", hidden: "", tabindex: "-1", "aria-hidden": "true"});
  var clip = el("button", {"class": "clip", type: "button", "aria-label": T.attach, title: T.attach,
    onclick: function () { file.click(); }}, [icon("M16.5 6.5 8.6 14.4a1.5 1.5 0 0 0 2.1 2.1l7.4-7.4a3 3 0 0 0-4.2-4.2L6.4 12.4a4.5 4.5 0 0 0 6.4 6.4l6.7-6.7 1.4 1.4-6.7 6.7a6.5 6.5 0 0 1-9.2-9.2l7.5-7.5a5 5 0 0 1 7 7l-7.4 7.4a3.5 3.5 0 0 1-5-5l7.9-7.9z")]);
  var sendBtn = el("button", {"class": "btn", type: "submit", text: T.send});
  var form = el("form", {"class": "form", onsubmit: function (e) { e.preventDefault(); submit(); }}, [clip, input, sendBtn, file]);
  var preErr = el("div", {"class": "err", role: "alert"});
  var nameIn = el("input", {type: "text", autocomplete: "name", name: "name"});
  var emailIn = el("input", {type: "email", autocomplete: "email", name: "email"});
  var skipBtn = el("button", {"class": "link", type: "button", text: T.skip, onclick: function () { S.skipped = true; showPrechat(false); }});
  var pre = el("form", {"class": "pre", hidden: "", onsubmit: function (e) { e.preventDefault(); prechat(); }}, [
    el("p", {text: T.intro}), el("label", {}, [txt(T.name), nameIn]), el("label", {}, [txt(T.email), emailIn]), preErr,
    el("div", {"class": "row"}, [el("button", {"class": "btn", type: "submit", text: T.start}), skipBtn])]);
  var heading = el("h2", {id: "omni-title", text: title});
  var panel = el("div", {"class": "panel", id: "omni-panel", role: "dialog", "aria-labelledby": "omni-title", hidden: "",
    lang: lang === "en" ? "en" : lang.replace("zh-Hans", "zh-CN").replace("zh-Hant", "zh-TW")}, [
    el("div", {"class": "head"}, [heading, el("button", {"class": "x", type: "button", "aria-label": T.close, text: "×", onclick: function () { close(); }})]),
    pre, log, typingLine, statusLine, form]);
  root.appendChild(launcher); root.appendChild(panel);
  panel.addEventListener("keydown", function (e) { if (e.key === "Escape") { e.preventDefault(); close(); } });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); submit(); }
  });
  input.addEventListener("input", onTyping);
  file.addEventListener("change", function () { if (file.files && file.files[0]) upload(file.files[0]); file.value = ""; });
  document.addEventListener("visibilitychange", flushRead);

  function system(text) { log.appendChild(el("div", {"class": "msg sys", text: text})); scroll(); }
  function scroll() { log.scrollTop = log.scrollHeight; }
  function setBadge() {
    badge.textContent = String(S.unread);
    if (S.unread) { badge.removeAttribute("hidden"); launcher.setAttribute("aria-label", T.open + " (" + S.unread + " " + (S.unread === 1 ? T.unreadOne : T.unread) + ")"); }
    else { badge.setAttribute("hidden", ""); launcher.setAttribute("aria-label", T.open); }
  }

  function bubble(m) {
    var cls = m.dir === "in" ? "in" : "out";
    var node = el("div", {"class": "msg " + cls, "data-id": m.id || "", "data-ref": m.client_id || ""});
    if (cls === "out") node.appendChild(el("div", {"class": "who", text: m.author || T.agent}));
    (m.texts || []).forEach(function (t) {
      var p = el("div"); renderText(t.text || "", t.format === "markdown", p); node.appendChild(p);
    });
    (m.media || []).forEach(function (f) {
      if (!f.url) return;
      var url = f.url + (f.url.indexOf(base) === 0 ? (f.url.indexOf("?") < 0 ? "?" : "&") + "t=" + encodeURIComponent(S.token || "") : "");
      // a picture gets its height when it loads: scroll again then, or the newest message hides
      if (f.kind === "image") node.appendChild(el("img", {src: url, alt: f.caption || f.name || "image", onload: scroll}));
      else node.appendChild(el("div", {}, [safeLink((f.name || f.kind), url)]));
      if (f.caption) node.appendChild(el("div", {text: f.caption}));
    });
    if ((m.actions || []).length) {
      var acts = el("div", {"class": "acts"});
      m.actions.forEach(function (a) {
        if (a.kind === "url" && a.value) acts.appendChild(safeLink(a.title, a.value));
        else acts.appendChild(el("button", {type: "button", text: a.title, onclick: function () { send(a.title); }}));
      });
      node.appendChild(acts);
    }
    if (m.at) node.appendChild(el("div", {"class": "meta", text: new Date(m.at).toLocaleTimeString([], {hour: "numeric", minute: "2-digit"})}));
    return node;
  }

  function show(m) {
    if (!m || !m.id || S.seenIds[m.id]) return;
    S.seenIds[m.id] = true;
    var node = bubble(m);
    var pending = m.client_id && log.querySelector('.pending[data-ref="' + m.client_id + '"]');
    if (pending) log.replaceChild(node, pending); else log.appendChild(node);
    if (!S.last || m.id > S.last) { S.last = m.id; persist(); }
    if (m.dir === "out") {
      typingLine.textContent = "";
      S.pendingDelivered.push(m.id);
      S.pendingRead.push(m.id);
      if (!S.open) { S.unread++; setBadge(); }
      flushDelivered();
      flushRead();
    }
    scroll();
  }
  // receipts shown before the connection is ready (history on a new page) wait for it: a
  // frame send_frame cannot send is not sent later by itself
  function flushIds(type, ids) {  // (the server takes up to 100 ids a receipt)
    while (ids.length && send_frame({type: type, ids: ids.slice(0, 100)})) ids.splice(0, 100);
  }
  function flushDelivered() { flushIds("delivered", S.pendingDelivered); }
  function flushRead() {
    if (!S.open || document.visibilityState === "hidden") return;
    flushIds("read", S.pendingRead);
  }

  // ---- session and transport --------------------------------------------------------------
  function api(path, body, method) {
    var headers = {"content-type": "application/json"};
    if (S.token) headers["x-webchat-session"] = S.token;
    return fetch(base + path, {method: method || "POST", headers: headers, body: body == null ? undefined : JSON.stringify(body)})
      .then(function (r) { return r.json().then(function (j) { j.__status = r.status; return j; }); });
  }

  function start(extra) {
    var body = {token: S.token, locale: lang};
    for (var k in extra || {}) body[k] = extra[k];
    return api("/session", body).then(function (r) {
      if (r.__status !== 200) throw new Error(r.detail || "session");
      S.token = r.token; S.config = r.config || {}; S.name = r.name; S.email = r.email; persist();
      if (!S.started) {
        S.started = true;
        if (!(r.history || []).length) system(T.welcome);
        (r.history || []).forEach(show);
        connect();
      }
      showPrechat(needPrechat());
      return r;
    });
  }
  function needPrechat() {
    var mode = S.config.prechat || "off";
    if (mode === "off" || S.email) return false;
    return mode === "required" || !S.skipped;
  }
  function showPrechat(on) {
    if (on && !S.email) { pre.removeAttribute("hidden"); if (S.open) nameIn.focus(); }
    else { pre.setAttribute("hidden", ""); if (S.open) input.focus(); }
    input.disabled = !!on && S.config.prechat === "required";
  }
  function prechat() {
    var name = nameIn.value.trim(), email = emailIn.value.trim();
    if (S.config.prechat === "required" && (!name || !email)) { preErr.textContent = T.required; return; }
    if (email && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email)) { preErr.textContent = T.badEmail; emailIn.focus(); return; }
    preErr.textContent = "";
    start({name: name, email: email}).then(function () {
      if (S.ws && S.ready) { try { S.ws.close(4000); } catch (e) { /* reconnects with the new token */ } }
    }).catch(function () { preErr.textContent = T.badEmail; });
  }

  function connect() {
    if (S.stopped || !S.token) return;
    if (S.polling || !window.WebSocket) { S.polling = true; poll(); return; }
    var ws;
    try { ws = new WebSocket(wsBase + "/ws"); } catch (e) { S.polling = true; poll(); return; }
    S.ws = ws; S.ready = false;
    ws.onopen = function () { ws.send(JSON.stringify({type: "auth", token: S.token, after: S.last})); };
    ws.onmessage = function (ev) { var f; try { f = JSON.parse(ev.data); } catch (e) { return; } onFrame(f); };
    ws.onclose = function (ev) {
      var wasReady = S.ready; S.ready = false; S.ws = null;
      if (S.stopped) return;
      if (ev.code === 4401) { S.token = null; persist(); S.started = false; start().catch(retryLater); return; }
      if (!wasReady && ++S.wsFailures >= 3) S.polling = true;
      statusLine.textContent = T.offline;
      retryLater();
    };
  }
  function retryLater() {
    var wait = S.backoff; S.backoff = Math.min(S.backoff * 2, 30000);
    setTimeout(function () { if (!S.ws && !S.stopped) connect(); }, wait);
  }
  function poll() {
    if (S.stopped || !S.polling) return;
    if (!S.ready) { S.ready = true; statusLine.textContent = ""; flushOutbox(); }
    fetch(base + "/poll?wait=25" + (S.last ? "&after=" + encodeURIComponent(S.last) : "") + (S.sig ? "&sig=" + S.sig : ""), {headers: {"x-webchat-session": S.token}})
      .then(function (r) { if (r.status === 401) throw new Error("session"); return r.json(); })
      .then(function (j) { S.backoff = 1000; if (j.sig) S.sig = j.sig; (j.frames || []).forEach(onFrame); poll(); })
      .catch(function () { S.ready = false; statusLine.textContent = T.offline; setTimeout(poll, S.backoff); S.backoff = Math.min(S.backoff * 2, 30000); });
  }
  function send_frame(f) {
    // a socket closing (CLOSING until the server answers the close, as after the pre-chat form)
    // drops what is sent on it: what the visitor writes meanwhile waits in the outbox
    if (S.ws && S.ready && S.ws.readyState === 1) { S.ws.send(JSON.stringify(f)); return true; }
    if (S.polling && S.token) {
      var path = f.type === "typing" ? "/typing" : (f.type === "read" || f.type === "delivered") ? "/receipts" : "/send";
      var body = f;
      if (f.type === "read") body = {read: f.ids};
      if (f.type === "delivered") body = {delivered: f.ids};
      api(path, body).then(function (r) { if (f.type === "message") onFrame(r); }).catch(function () {
        if (f.type === "message") S.outbox.unshift(f);
      });
      return true;
    }
    return false;
  }
  // a message sent on a connection that closed before its ack may never have reached the
  // server: a new connection sends it again, in the order shown (the server stores an id once,
  // and acknowledges a repeat with the message it stored)
  function requeueUnacked() {
    var queued = {}, again = [];
    S.outbox.forEach(function (f) { queued[f.id] = true; });
    Array.prototype.forEach.call(log.querySelectorAll(".msg.in.pending:not(.failed)"), function (n) {
      var f = S.outboxed && S.outboxed[n.getAttribute("data-ref")];
      if (f) { again.push(f); queued[f.id] = false; }
    });
    S.outbox = again.concat(S.outbox.filter(function (f) { return queued[f.id] !== false; }));
  }
  function flushOutbox() {
    requeueUnacked();
    var items = S.outbox.splice(0);
    items.forEach(function (f) { if (!send_frame(f)) S.outbox.push(f); });
    flushDelivered();
    flushRead();
  }

  function onFrame(f) {
    if (!f || !f.type) return;
    if (f.type === "ready") {
      S.ready = true; S.backoff = 1000; S.wsFailures = 0; statusLine.textContent = "";
      if (f.token) { S.token = f.token; persist(); }
      if (f.config) S.config = f.config;
      flushOutbox();
    } else if (f.type === "message" || f.type === "ack") {
      if (f.message) show(f.message);
    } else if (f.type === "update" && f.message) {
      var old = log.querySelector('[data-id="' + f.message.id + '"]');
      if (old) log.replaceChild(bubble(f.message), old);
    } else if (f.type === "typing") {
      clearTimeout(S.agentTypingTimer);
      // one line, "Ana is typing…": the name goes into the sentence, never before it
      typingLine.textContent = f.on ? T.typing.replace("{name}", f.name || T.agent) : "";
      if (f.on) S.agentTypingTimer = setTimeout(function () { typingLine.textContent = ""; }, 8000);
    } else if (f.type === "seen") {
      var mine = log.querySelectorAll(".msg.in"); var lastMine = mine[mine.length - 1];
      var s = root.querySelector(".seen"); if (s) s.parentNode.removeChild(s);
      if (lastMine) lastMine.appendChild(el("div", {"class": "meta seen", text: T.seen}));
    } else if (f.type === "error") {
      var node = f.ref && log.querySelector('.pending[data-ref="' + f.ref + '"]');
      if (f.code === "rate_limited") {
        statusLine.textContent = T.slow;
        var again = S.outboxed && S.outboxed[f.ref];
        if (again) setTimeout(function () { send_frame(again); }, Math.max(1000, (f.retry_after || 1) * 1000));
      } else if (f.code === "prechat") { showPrechat(true); }
      if (node && f.code !== "rate_limited") markFailed(node);
    }
  }
  function markFailed(node) {
    node.classList.add("failed"); node.setAttribute("role", "button"); node.setAttribute("tabindex", "0");
    node.setAttribute("aria-label", T.failed); node.title = T.failed;
    var retry = function () { var f = S.outboxed[node.getAttribute("data-ref")]; node.classList.remove("failed"); if (f) send_frame(f) || S.outbox.push(f); };
    node.addEventListener("click", retry);
    node.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); retry(); } });
  }

  // ---- what the visitor does ------------------------------------------------------------------
  function send(text) {
    text = (text || "").trim();
    if (!text) return;
    var id = uid(), f = {type: "message", id: id, text: text};
    S.outboxed = S.outboxed || {}; S.outboxed[id] = f;
    log.appendChild(bubble({dir: "in", client_id: id, texts: [{text: text, format: "plain"}]}));
    log.lastChild.classList.add("pending");
    scroll();
    if (!S.token) { S.outbox.push(f); start().catch(retryLater); return; }
    if (!send_frame(f)) S.outbox.push(f);
  }
  function submit() {
    if (input.disabled) return;
    var text = input.value; input.value = "";
    stopTyping(); send(text);
  }
  function onTyping() {
    if (!S.typingSent) { S.typingSent = true; send_frame({type: "typing", on: true}); }
    clearTimeout(S.typingTimer);
    S.typingTimer = setTimeout(stopTyping, 3000);
  }
  function stopTyping() {
    clearTimeout(S.typingTimer);
    if (S.typingSent) { S.typingSent = false; send_frame({type: "typing", on: false}); }
  }
  function accepts(type) {
    return (S.config.upload_types || []).some(function (t) {
      return t === type || (t.slice(-2) === "/*" && type.indexOf(t.slice(0, -1)) === 0);
    });
  }
  function upload(f) {
    if (S.config.upload_max && f.size > S.config.upload_max) { system(T.tooBig); return; }
    if (!accepts(f.type)) { system(T.badType); return; }
    var id = uid();
    var node = bubble({dir: "in", client_id: id, texts: [{text: f.name + " · " + T.sending, format: "plain"}]});
    node.classList.add("pending"); log.appendChild(node); scroll();
    fetch(base + "/upload?id=" + id + "&name=" + encodeURIComponent(f.name), {method: "POST", body: f,
      headers: {"content-type": f.type, "x-webchat-session": S.token}})
      .then(function (r) { return r.json(); })
      .then(function (j) { if (j.message) show(j.message); else { node.parentNode && node.parentNode.removeChild(node); system(j.error === "size" ? T.tooBig : j.error === "type" ? T.badType : T.uploadFailed); } })
      .catch(function () { node.parentNode && node.parentNode.removeChild(node); system(T.uploadFailed); });
  }

  function open() {
    S.open = true; panel.removeAttribute("hidden"); launcher.setAttribute("aria-expanded", "true");
    S.unread = 0; setBadge();
    launcher.setAttribute("aria-label", T.close);
    var ready = S.started ? Promise.resolve() : start();
    ready.then(function () { (needPrechat() ? nameIn : input).focus(); flushRead(); scroll(); }).catch(function () { statusLine.textContent = T.offline; retryLater(); });
    input.focus(); scroll();
  }
  function close() {
    S.open = false; panel.setAttribute("hidden", ""); launcher.setAttribute("aria-expanded", "false");
    setBadge(); stopTyping(); launcher.focus();
  }

  window.OmnichannelChat = {
    open: open, close: close, send: send, lang: lang,
    disconnect: function () { S.stopped = true; if (S.ws) S.ws.close(); },
    connect: function () { S.stopped = false; if (!S.ws) connect(); },
    state: function () { return {ready: S.ready, polling: S.polling, visitor: !!S.token, last: S.last}; }
  };
  function mount() {
    document.body.appendChild(host);
    if (ds.transport === "poll") S.polling = true;
    if (ds.open === "true") open();
    else if (S.token) start().catch(function () { /* connects when opened */ });
  }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
