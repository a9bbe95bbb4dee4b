// The demo's agent inbox: the conversation list, one thread, the contact panel, live events.
// Everything the server sends is put in the page as text nodes (never innerHTML).
(function () {
"use strict";
var current = null, currentConv = null, convs = [], ws = null, typingTimer = null, typingOn = false;
var reloadTimer = null, pending = [], channels = [], contactOpen = false, listTicket = 0;
var $ = function (id) { return document.getElementById(id); };
function el(tag, cls, text) {
  var n = document.createElement(tag); if (cls) n.className = cls;
  if (text != null) n.textContent = text; return n;
}
var TIME = new Intl.DateTimeFormat(undefined, {hour: "numeric", minute: "2-digit"});
var DAY = new Intl.DateTimeFormat(undefined, {month: "short", day: "numeric"});
var SECONDS = new Intl.DateTimeFormat(undefined, {hour: "numeric", minute: "2-digit", second: "2-digit"});
// timeline messages per page in the contact panel (``?timeline_page=N`` in the inbox's URL)
var TIMELINE_PAGE = Math.max(1, Math.min(500, parseInt(new URLSearchParams(location.search).get("timeline_page"), 10) || 200));
function time(iso) { try { return TIME.format(new Date(iso)); } catch (e) { return ""; } }
function ago(iso) {
  var d = new Date(iso), s = (Date.now() - d.getTime()) / 1000;
  if (s < 45) return "now";
  if (s < 3600) return Math.round(s / 60) + " min";
  if (s < 86400 && new Date().getDate() === d.getDate()) return time(iso);
  if (s < 172800) return "yesterday";
  return DAY.format(d);
}
function clock(seconds) {
  var s = Math.max(0, Math.floor(seconds)), h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60);
  var ss = ("0" + s % 60).slice(-2);
  return h ? h + ":" + ("0" + m).slice(-2) + ":" + ss : m + ":" + ss;
}
function plural(n, one, many) { return n + " " + (n === 1 ? one : many); }
function icon(channel) {
  var ns = "http://www.w3.org/2000/svg", svg = document.createElementNS(ns, "svg");
  var use = document.createElementNS(ns, "use");
  use.setAttribute("href", "/demo/static/icons.svg#" + (ICONS[channel] ? channel : "custom"));
  svg.setAttribute("class", "ic ch-" + channel); svg.setAttribute("aria-hidden", "true");
  svg.appendChild(use); return svg;
}
var ICONS = {webchat: 1, email: 1, sms: 1, whatsapp: 1, telegram: 1, messenger: 1, instagram: 1,
             wechat: 1, voice: 1, custom: 1};
function toast(text) {
  var t = $("toast"); t.textContent = text; t.className = "on";
  clearTimeout(toast.timer); toast.timer = setTimeout(function () { t.className = ""; }, 2500);
}
function api(path, body) {
  return fetch(path, body === undefined ? {} : {method: "POST", headers: {
    "content-type": "application/json", "x-demo-token": DEMO_TOKEN}, body: JSON.stringify(body)}
  ).then(function (r) {
    return r.json().then(function (j) { if (!r.ok) throw new Error(j.error || r.statusText); return j; });
  });
}

// -- the markdown subset the agent writes: **bold**, *italic*, _italic_, `code`, [label](https://…)
function markdown(text, parent) {
  var re = /(\*\*([^*]+)\*\*)|(`([^`]+)`)|(\[([^\]]+)\]\((https?:\/\/[^\s)]+)\))|(\*([^*\s][^*]*)\*)|(_([^_\s][^_]*)_)/g;
  var at = 0, m;
  while ((m = re.exec(text))) {
    if (m.index > at) parent.appendChild(document.createTextNode(text.slice(at, m.index)));
    if (m[1]) parent.appendChild(el("strong", null, m[2]));
    else if (m[3]) parent.appendChild(el("code", null, m[4]));
    else if (m[5]) { var a = el("a", null, m[6]); a.href = m[7]; a.target = "_blank"; a.rel = "noopener"; parent.appendChild(a); }
    else if (m[8]) parent.appendChild(el("em", null, m[9]));
    else parent.appendChild(el("em", null, m[11]));
    at = re.lastIndex;
  }
  if (at < text.length) parent.appendChild(document.createTextNode(text.slice(at)));
  return parent;
}

// -- the list -------------------------------------------------------------------------------
function avatar(c) {
  var av = el("span", "av"); av.style.background = c.color;
  if (c.avatar) { var img = el("img"); img.src = c.avatar; img.alt = ""; av.appendChild(img); }
  else av.appendChild(document.createTextNode(c.initials));
  var badge = el("span", "chi"); badge.title = c.channel_name; badge.appendChild(icon(c.channel));
  av.appendChild(badge); return av;
}
function slaChip(c) {
  if (!c.waiting_since) return null;
  var chip = el("span", "sla"); chip.dataset.since = c.waiting_since; chip.dataset.target = c.sla_target;
  tickChip(chip); return chip;
}
function tickChip(chip) {
  var waited = (Date.now() - new Date(chip.dataset.since).getTime()) / 1000, target = +chip.dataset.target;
  chip.textContent = "SLA " + clock(waited) + (waited > target ? " overdue" : "");
  chip.className = "sla" + (waited > target ? " over" : waited > target / 2 ? " warn" : "");
  chip.title = "Waiting for a reply; target " + clock(target);
}
function loadList() {
  var q = encodeURIComponent($("search").value.trim()), status = $("filter").value, ticket = ++listTicket;
  return api("/demo/api/conversations?status=" + status + "&q=" + q).then(function (list) {
    if (ticket !== listTicket) return;  // a newer search or filter answered (or will)
    convs = list; var ul = $("list"); ul.textContent = "";
    if (!list.length) ul.appendChild(el("li", "empty", q ? "No conversation matches." : "No conversations yet."));
    var unread = 0;
    list.forEach(function (c) {
      if (c.id === current) c.unread = 0;
      unread += c.unread;
      var li = el("li"), b = el("button", "conv" + (c.unread ? " unread" : "")); b.type = "button";
      b.dataset.id = c.id; b.dataset.key = c.channel_key; b.dataset.channel = c.channel;
      b.setAttribute("aria-current", String(c.id === current));
      b.appendChild(avatar(c));
      b.appendChild(el("span", "name", c.title));
      var when = el("span", "when", ago(c.last_at)); when.dataset.at = c.last_at; when.title = time(c.last_at);
      b.appendChild(when);
      b.appendChild(el("span", "pv", (c.last_direction === "outbound" ? "You: " : "") + (c.preview || "")));
      var side = el("span", "side");
      side.appendChild(el("span", "chn", c.channel_name));
      if (c.status === "closed") side.appendChild(el("span", "closed-chip", "closed"));
      var chip = slaChip(c); if (chip) side.appendChild(chip);
      if (c.unread) { var n = el("span", "badge", String(c.unread)); n.setAttribute("aria-label", plural(c.unread, "unread message", "unread messages")); side.appendChild(n); }
      b.appendChild(side);
      b.addEventListener("click", function () { open(c.id); });
      li.appendChild(b); ul.appendChild(li);
    });
    document.title = (unread ? "(" + unread + ") " : "") + "Inbox · omnichannel demo";
    if (current) { var mine = list.filter(function (c) { return c.id === current; })[0]; if (mine) header(mine); }
  });
}
function scheduleList() { clearTimeout(reloadTimer); reloadTimer = setTimeout(function () { loadList(); loadMerges(); }, 150); }
function loadMerges() {
  return api("/demo/api/merges").then(function (props) {
    var box = $("merges"); box.textContent = ""; box.hidden = !props.length;
    if (!props.length) return;
    box.appendChild(document.createTextNode(plural(props.length, "possible duplicate contact", "possible duplicate contacts") + ": "));
    props.forEach(function (p) {
      var b = el("button", null, (p.existing.name || p.address) + " ↔ " + (p.contact.name || p.address));
      b.type = "button"; b.addEventListener("click", function () { showContact(p.existing.id); });
      box.appendChild(b);
    });
  });
}

// -- one thread -----------------------------------------------------------------------------
function ticks(m) {
  var label = {queued: "… queued", sent: "✓ sent", delivered: "✓✓ delivered", read: "✓✓ read", failed: "✕ not delivered"}[m.status] || m.status;
  var r = m.retry, waiting = !!(r && m.status === "queued" && r.next_at);
  if (waiting) label = "↻ retrying";
  var st = el("span", "st " + m.status + (waiting ? " retrying" : ""), label);
  var why = m.error ? m.error + (m.error_code ? " (" + m.error_code + ")" : "") : "";
  // the outbox's retry state: still trying (queued, a next attempt due), or how it ended
  if (waiting)
    why += (why ? "; " : "") + "attempt " + r.attempts + " failed" + (r.last_error ? " (" + r.last_error + ")" : "") +
      "; retrying at " + SECONDS.format(new Date(r.next_at));
  else if (r && m.status === "failed") why += (why ? "; " : "") + "gave up after " + plural(r.attempts, "attempt", "attempts");
  else if (r && r.attempts > 1) why += (why ? "; " : "") + "sent on attempt " + r.attempts + (r.last_error ? " (earlier: " + r.last_error + ")" : "");
  if (why) st.title = why;
  return [st, why];
}
function transcript(rows) {
  var box = el("div", "transcript"), turn = null, last;
  rows.forEach(function (s) {
    if (!turn || s.speaker !== last) {
      turn = el("p"); if (s.speaker) turn.appendChild(el("span", "sp", s.speaker + ": "));
      var ts = el("span", "ts", clock(s.start)); turn.insertBefore(ts, turn.firstChild);
      box.appendChild(turn); last = s.speaker;
    } else turn.appendChild(document.createTextNode(" "));
    turn.appendChild(document.createTextNode(s.text));
  });
  return box;
}
function render(m) {
  if (m.kind === "event") {
    var ev = el("li", "m event"); ev.dataset.id = m.id;
    ev.textContent = "● " + m.sender_name + " " + m.events.map(function (e) { return e.label; }).join(", ") + " · " + time(m.created_at);
    return ev;
  }
  var email = m.channel === "email";
  var li = el("li", "m " + m.direction + (email ? " email" : "")); li.dataset.id = m.id;
  var whoName = m.direction === "inbound" ? m.sender_name : (m.author || "us") + (m.author_kind === "bot" ? " (bot)" : "");
  var who = el("div", "who"); who.appendChild(el("span", null, whoName + " · " + time(m.created_at)));
  var failure = "";
  if (m.direction === "outbound") { var t = ticks(m); who.appendChild(t[0]); failure = t[1]; }
  li.appendChild(who);
  if (email && m.subject) li.appendChild(el("div", "subj", m.subject));
  if (email && m.cc.length) li.appendChild(el("div", "hdr", "Cc: " + m.cc.join(", ")));
  if (m.text) { var tx = el("div", "tx"); if (m.markdown) markdown(m.text, tx); else tx.textContent = m.text; li.appendChild(tx); }
  (m.media || []).forEach(function (f) {
    if (f.kind === "image" && f.href) { var i = el("img"); i.src = f.href; i.alt = f.name || "image"; li.appendChild(i); }
    else if (f.kind === "audio" && f.href) { var au = el("audio"); au.controls = true; au.preload = "none"; au.src = f.href; au.setAttribute("aria-label", f.name || "recording"); li.appendChild(au); }
    else { var a = el("a", "file", "Attachment: " + (f.name || f.kind)); if (f.href) a.href = f.href; a.target = "_blank"; a.rel = "noopener"; li.appendChild(a); }
  });
  if (m.transcript && m.transcript.length) li.appendChild(transcript(m.transcript));
  if (m.events && m.events.length) li.appendChild(el("div", "chn", m.events.map(function (e) { return e.label; }).join(", ")));
  if (email && m.quoted) {
    var d = el("details"); d.appendChild(el("summary", null, "Quoted history")); d.appendChild(el("pre", null, m.quoted)); li.appendChild(d);
  }
  // a reason under the bubble while it matters: failed, or queued between two attempts
  if (failure && (m.status === "failed" || m.status === "queued")) li.appendChild(el("div", "err", failure));
  return li;
}
var RANK = {received: 0, queued: 1, sent: 2, failed: 2, delivered: 3, read: 4};
function upsert(m) {
  var old = document.querySelector('.m[data-id="' + m.id + '"]');
  // the reply's own HTTP answer can land after the live status events: never go backwards
  if (old && RANK[old.dataset.status] > RANK[m.status]) return;
  var node = render(m); node.dataset.status = m.status;
  if (old) old.replaceWith(node); else { $("msgs").appendChild(node); $("msgs").scrollTop = 1e9; }
}
function header(c) {
  currentConv = c; var h = $("head"); h.textContent = "";
  var back = el("button", null, "←"); back.id = "back"; back.type = "button"; back.setAttribute("aria-label", "Back to the list");
  back.addEventListener("click", function () { document.body.classList.remove("has-thread"); });
  h.appendChild(back); h.appendChild(avatar(c));
  var t = el("div", "t"); t.appendChild(el("strong", null, c.title));
  var sub = [c.channel_name];
  if (c.address) sub.push(c.address);
  var others = c.emails.filter(function (e) { return e !== c.address; });  // never the same twice
  if (others.length) sub.push(others.join(", "));
  if (c.subject) sub.push(c.subject);
  var small = el("small", null, sub.join(" · ")); small.title = "channel " + c.channel_key;
  t.appendChild(small); h.appendChild(t);
  var chip = slaChip(c); if (chip) h.appendChild(chip);
  var who = el("button", null, "Contact"); who.type = "button"; who.id = "contact-button";
  who.addEventListener("click", function () { if (contactOpen) hideContact(); else showContact(c.contact_id); });
  h.appendChild(who);
  var st = el("button", null, c.status === "open" ? "Resolve" : "Reopen"); st.type = "button"; st.id = "status-button";
  st.addEventListener("click", function () {
    api("/demo/api/c/" + c.id + "/status", {status: c.status === "open" ? "closed" : "open"}).then(function (r) {
      toast(r.status === "closed" ? "Conversation resolved" : "Conversation reopened"); c.status = r.status; header(c); loadList();
    }).catch(function (e) { $("error").textContent = e.message; });
  });
  h.appendChild(st);
}
function open(id) {
  current = id; location.hash = id; $("typing").textContent = ""; $("error").textContent = "";
  document.body.classList.add("has-thread");
  document.querySelectorAll(".conv").forEach(function (b) {
    var mine = b.dataset.id === id; b.setAttribute("aria-current", String(mine));
    if (mine) { b.classList.remove("unread"); var n = b.querySelector(".badge"); if (n) n.remove(); }
  });
  return api("/demo/api/c/" + id).then(function (d) {
    header(d.conversation);
    $("msgs").textContent = ""; d.messages.forEach(upsert); $("reply-form").hidden = false;
    send({type: "seen", conversation_id: id});
    if (contactOpen) showContact(d.conversation.contact_id);
    setTimeout(loadList, 300);
  });
}
function step(delta) {
  if (!convs.length) return;
  var at = convs.findIndex(function (c) { return c.id === current; });
  var next = convs[Math.min(convs.length - 1, Math.max(0, at < 0 ? 0 : at + delta))];
  if (next && next.id !== current) open(next.id).then(function () {
    var b = document.querySelector('.conv[data-id="' + next.id + '"]'); if (b) b.focus();
  });
}

// -- the contact panel ----------------------------------------------------------------------
function hideContact() { contactOpen = false; $("contact").hidden = true; }
function act(path, done) {
  return api(path, {}).then(function () { toast(done); scheduleList(); }).catch(function (e) { toast(e.message); });
}
function showContact(id) {
  contactOpen = true;
  // shown again for a live change (a contact event, the conversation reopened): keep as many
  // timeline items as the agent had paged back to, not only the newest page
  var shown = $("contact").dataset.id === id && !$("contact").hidden ? $("contact").querySelectorAll(".tl li").length : 0;
  var limit = Math.min(500, Math.max(TIMELINE_PAGE, shown));
  return api("/demo/api/contacts/" + id + "?timeline_limit=" + limit).then(function (c) {
    var box = $("contact"); box.textContent = ""; box.hidden = false; box.dataset.id = c.id;
    var close = el("button", "close", "✕"); close.type = "button"; close.setAttribute("aria-label", "Close the contact panel");
    close.addEventListener("click", hideContact); box.appendChild(close);
    box.appendChild(el("h2", null, c.name || "Contact"));
    box.appendChild(el("h3", null, "Addresses"));
    var ul = el("ul", "addresses");
    c.addresses.forEach(function (a) { var li = el("li"); li.appendChild(icon(a.channel)); li.appendChild(el("span", null, a.channel_name + ": " + a.label));
      if (a.label !== a.handle) li.title = a.handle; ul.appendChild(li); });
    box.appendChild(ul);
    var keys = Object.keys(c.profile);
    if (keys.length) {
      box.appendChild(el("h3", null, "Profile")); var pl = el("ul", "profile");
      keys.forEach(function (k) { pl.appendChild(el("li", null, k.replace(/_/g, " ") + ": " + c.profile[k])); }); box.appendChild(pl);
    }
    if (c.proposals.length) {
      box.appendChild(el("h3", null, "Possible duplicates"));
      c.proposals.forEach(function (p) {
        var other = p.existing.id === c.id ? p.contact : p.existing, row = el("div", "prop");
        row.appendChild(el("div", null, (other.name || p.address) + " shares " + p.channel_name + " " + p.address));
        var yes = el("button", "confirm", "Merge"); yes.type = "button";
        yes.addEventListener("click", function () { act("/demo/api/merges/" + p.id + "/confirm", "Contacts merged").then(function () { showContact(p.existing.id); }); });
        var no = el("button", "reject", "Not the same person"); no.type = "button";
        no.addEventListener("click", function () { act("/demo/api/merges/" + p.id + "/reject", "Kept apart").then(function () { showContact(c.id); }); });
        row.appendChild(yes); row.appendChild(no); box.appendChild(row);
      });
    }
    var active = c.merges.filter(function (mg) { return !mg.unmerged_at; });
    if (active.length) {
      box.appendChild(el("h3", null, "Merged contacts"));
      active.forEach(function (mg) {
        var moved = (mg.moved || []).join(", ");
        var row = el("div", "prop merge"); row.appendChild(el("div", null, "Merged " + time(mg.merged_at) + (moved ? ": " + moved : "")));
        var un = el("button", "unmerge", "Unmerge"); un.type = "button";
        un.addEventListener("click", function () { act("/demo/api/unmerge/" + mg.id, "Contacts separated").then(function () { showContact(c.id); }); });
        row.appendChild(un);
        box.appendChild(row);
      });
    }
    box.appendChild(el("h3", null, "Timeline · " + plural(c.conversations.length, "conversation", "conversations")));
    var tl = el("ul", "tl");
    c.timeline.forEach(function (m) { tl.appendChild(timelineItem(m)); });
    if (c.timeline_before) box.appendChild(earlierButton(c.id, tl, c.timeline_before));
    box.appendChild(tl);
  });
}
function timelineItem(m) {
  var li = el("li"), b = el("button"); b.type = "button";
  var meta = el("div", "meta"); meta.appendChild(icon(m.channel));
  meta.appendChild(document.createTextNode(" " + m.channel_name + " · " + DAY.format(new Date(m.created_at)) + " " + time(m.created_at) + (m.direction === "outbound" ? " · reply" : "")));
  b.appendChild(meta);
  b.appendChild(el("div", null, m.kind === "event" ? m.events.map(function (e) { return e.label; }).join(", ") : (m.subject ? m.subject + " — " : "") + (m.text || (m.media[0] && m.media[0].name) || m.media.length && m.media[0].kind || "")));
  b.addEventListener("click", function () { open(m.conversation_id); });
  li.appendChild(b);
  return li;
}
// the panel loads the newest page of the timeline; older pages go on top, one click each
function earlierButton(contactId, tl, before) {
  var more = el("button", "earlier", "Show earlier messages"); more.type = "button";
  more.addEventListener("click", function () {
    more.disabled = true;
    api("/demo/api/contacts/" + contactId + "/timeline?limit=" + TIMELINE_PAGE + "&before=" + encodeURIComponent(before)).then(function (page) {
      var first = tl.firstChild;
      page.items.forEach(function (m) { tl.insertBefore(timelineItem(m), first); });
      if (page.next_before) { before = page.next_before; more.disabled = false; } else more.remove();
    }, function () { more.disabled = false; });
  });
  return more;
}

// -- the live connection ----------------------------------------------------------------------
function send(f) { if (ws && ws.readyState === 1) ws.send(JSON.stringify(f)); }
function connect() {
  var proto = location.protocol === "https:" ? "wss://" : "ws://";
  ws = new WebSocket(proto + location.host + "/demo/ws");
  ws.onopen = function () { $("live").textContent = "● live"; $("live").className = "on"; loadList(); loadMerges(); if (current) open(current); };
  ws.onclose = function () { $("live").textContent = "○ reconnecting"; $("live").className = ""; setTimeout(connect, 1000); };
  ws.onmessage = function (ev) {
    var e = JSON.parse(ev.data);
    if (e.type === "signal") {
      if (e.name === "typing" && e.from !== "agent" && e.conversation_id === current)
        $("typing").textContent = e.on ? "The customer is typing…" : "";
      return;
    }
    if (e.message && e.message.conversation_id === current) {
      upsert(e.message);
      if (e.message.direction === "inbound") { $("typing").textContent = ""; send({type: "seen", conversation_id: current}); }
    }
    if (e.type !== "message.status" || !e.message) scheduleList();
    if (e.type.indexOf("contact.") === 0 && contactOpen) showContact($("contact").dataset.id);
  };
}

// -- the reply box ----------------------------------------------------------------------------
function stopTyping() { if (typingOn && current) { typingOn = false; send({type: "typing", conversation_id: current, on: false}); } }
function showPreview() {
  var p = $("preview"); p.textContent = ""; markdown($("reply").value, p);
}
function readFile(f) {
  return new Promise(function (ok, fail) {
    var r = new FileReader();
    r.onload = function () { ok({name: f.name, type: f.type || "application/octet-stream", data: String(r.result).split(",", 2)[1] || ""}); };
    r.onerror = fail; r.readAsDataURL(f);
  });
}
$("reply").addEventListener("input", function () {
  if (!current) return;
  if (!$("preview").hidden) showPreview();
  if (!typingOn) { typingOn = true; send({type: "typing", conversation_id: current, on: true}); }
  clearTimeout(typingTimer); typingTimer = setTimeout(stopTyping, 2500);
});
$("reply").addEventListener("keydown", function (e) {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); $("reply-form").requestSubmit(); }
  if (e.key === "Escape") $("reply").blur();
});
$("preview-button").addEventListener("click", function () {
  var p = $("preview"), on = p.hidden; p.hidden = !on; this.setAttribute("aria-pressed", String(on)); if (on) showPreview();
});
$("file").addEventListener("change", function () {
  pending = Array.prototype.slice.call(this.files); var box = $("files"); box.textContent = "";
  pending.forEach(function (f) { box.appendChild(el("span", null, f.name)); });
});
$("reply-form").addEventListener("submit", function (e) {
  e.preventDefault(); var text = $("reply").value.trim(), files = pending;
  if ((!text && !files.length) || !current) return;
  $("reply").value = ""; pending = []; $("file").value = ""; $("files").textContent = ""; showPreview();
  stopTyping(); $("error").textContent = "";
  Promise.all(files.map(readFile)).then(function (data) {
    return api("/demo/api/c/" + current + "/reply", {text: text, files: data});
  }).then(upsert).catch(function (err) { $("error").textContent = "Not sent: " + err.message; });
});

// -- the header: search, filter, simulators, shortcuts --------------------------------------------
var searchTimer = null;
$("search").addEventListener("input", function () { clearTimeout(searchTimer); searchTimer = setTimeout(loadList, 200); });
$("filter").addEventListener("change", loadList);
function closeMenu() { $("sim-menu").hidden = true; $("sim-button").setAttribute("aria-expanded", "false"); }
$("sim-button").addEventListener("click", function () {
  var menu = $("sim-menu"), opening = menu.hidden; menu.hidden = !opening; this.setAttribute("aria-expanded", String(opening));
  if (opening && menu.firstChild) menu.firstChild.focus();
});
api("/demo/api/channels").then(function (list) {
  channels = list; var menu = $("sim-menu");
  list.forEach(function (c) {
    var b = el("button"); b.type = "button"; b.setAttribute("role", "menuitem"); b.dataset.key = c.key;
    b.appendChild(icon(c.channel)); b.appendChild(el("span", null, c.name + " · " + c.key));
    b.addEventListener("click", function () {
      closeMenu();
      api("/demo/api/simulate/" + encodeURIComponent(c.key), {}).then(function () { toast("Simulated " + c.name + " traffic"); })
        .catch(function (err) { toast("Simulation failed: " + err.message); });
    });
    menu.appendChild(b);
  });
});
document.addEventListener("click", function (e) { if (!e.target.closest(".menu")) closeMenu(); });
$("help-button").addEventListener("click", function () { $("help").showModal(); });
document.addEventListener("keydown", function (e) {
  var typing = /^(INPUT|TEXTAREA|SELECT)$/.test(e.target.tagName);
  if (e.key === "Escape") { closeMenu(); if (contactOpen) hideContact(); return; }
  if (e.altKey && (e.key === "ArrowDown" || e.key === "ArrowUp")) { e.preventDefault(); step(e.key === "ArrowDown" ? 1 : -1); return; }
  if ((e.ctrlKey || e.metaKey) && e.key === "Enter" && current) { e.preventDefault(); $("reply-form").requestSubmit(); return; }
  if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.key === "j") step(1);
  else if (e.key === "k") step(-1);
  else if (e.key === "/") { e.preventDefault(); $("search").focus(); }
  else if (e.key === "r" && current) { e.preventDefault(); $("reply").focus(); }
  else if (e.key === "?") $("help").showModal();
});
setInterval(function () {
  document.querySelectorAll(".sla").forEach(tickChip);
  document.querySelectorAll(".conv .when").forEach(function (w) { w.textContent = ago(w.dataset.at); });
}, 1000);
if (location.hash.length > 1) current = location.hash.slice(1);
loadList().then(function () { if (current) open(current); }); loadMerges(); connect();
})();
