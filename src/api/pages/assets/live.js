// boomerang's pages script. Everything works without it; with it:
// - the job page follows a running job's log stream (Server-Sent Events; the URL is the script tag's data-stream),
//   appending each line with the same anchors and colour classes the server renders, scrolling to it while
//   "Follow the log" is ticked, and reloading the page when the job ends;
// - the jobs list swaps in a fresh copy of its part marked data-refresh (found by its id) every few seconds.
// Text from a step is only ever put into the page with textContent.
(function () {
  "use strict";
  var me = document.currentScript;

  // The SGR attributes of ESC[...m as classes, like src/api/pages/ansi.rs; other sequences and controls dropped.
  function runs(text) {
    var out = [], cur = "", a = { b: 0, d: 0, i: 0, u: 0, f: -1, g: -1 }, i = 0;
    function cls() {
      var c = [];
      if (a.b) c.push("b"); if (a.d) c.push("d"); if (a.i) c.push("i"); if (a.u) c.push("u");
      if (a.f >= 0) c.push("f" + a.f); if (a.g >= 0) c.push("g" + a.g);
      return c.join(" ");
    }
    function flush() { if (cur) { out.push([cls(), cur]); cur = ""; } }
    function apply(params) {
      var codes = params.split(/[;:]/).map(function (p) { return parseInt(p, 10) || 0; });
      for (var k = 0; k < codes.length; k++) {
        var c = codes[k];
        if (c === 0) a = { b: 0, d: 0, i: 0, u: 0, f: -1, g: -1 };
        else if (c === 1) a.b = 1; else if (c === 2) a.d = 1; else if (c === 3) a.i = 1; else if (c === 4) a.u = 1;
        else if (c === 22) { a.b = 0; a.d = 0; } else if (c === 23) a.i = 0; else if (c === 24) a.u = 0;
        else if (c >= 30 && c <= 37) a.f = c - 30; else if (c >= 90 && c <= 97) a.f = c - 82;
        else if (c === 39) a.f = -1;
        else if (c >= 40 && c <= 47) a.g = c - 40; else if (c >= 100 && c <= 107) a.g = c - 92;
        else if (c === 49) a.g = -1;
        else if (c === 38 || c === 48) {
          var colour = -1;
          if (codes[k + 1] === 5) { var n = codes[k + 2]; k += 2; if (n < 16) colour = n; }
          else if (codes[k + 1] === 2) { k += 4; }
          if (c === 38) a.f = colour; else a.g = colour;
        }
      }
    }
    while (i < text.length) {
      var ch = text[i];
      if (ch === "\u001b") {
        var next = text[i + 1];
        if (next === "[") {
          var j = i + 2, params = "";
          while (j < text.length && !(text.charCodeAt(j) >= 0x40 && text.charCodeAt(j) <= 0x7e)) { params += text[j]; j++; }
          if (text[j] === "m") { flush(); apply(params); }
          i = j + 1;
        } else if (next === "]") {
          var k2 = i + 2;
          while (k2 < text.length && text[k2] !== "\u0007" && !(text[k2] === "\u001b" && text[k2 + 1] === "\\")) k2++;
          i = text[k2] === "\u001b" ? k2 + 2 : k2 + 1;
        } else { i += 2; }
        continue;
      }
      var code = text.charCodeAt(i);
      var control = (code < 32 && ch !== "\t") || (code >= 0x7f && code < 0xa0) ||
        (code >= 0x202a && code <= 0x202e) || (code >= 0x2066 && code <= 0x2069) || code === 0x200e || code === 0x200f;
      if (!control) cur += ch;
      i++;
    }
    flush();
    return out;
  }

  function lineElement(l, anchor) {
    var span = document.createElement("span");
    span.id = anchor;
    span.className = "line" + (l.stream === "stderr" ? " err" : "");
    var a = document.createElement("a");
    a.className = "ln"; a.href = "#" + anchor; a.textContent = String(l.number);
    var t = document.createElement("span");
    t.className = "t";
    runs(l.text).forEach(function (r) {
      if (!r[0]) { t.appendChild(document.createTextNode(r[1])); return; }
      var s = document.createElement("span"); s.className = r[0]; s.textContent = r[1]; t.appendChild(s);
    });
    span.appendChild(a); span.appendChild(t); span.appendChild(document.createTextNode("\n"));
    return span;
  }

  function follow(stream) {
    if (!window.EventSource) { setTimeout(function () { location.reload(); }, 3000); return; }
    var box = document.querySelector(".follow"), tick = document.getElementById("follow");
    if (box) box.hidden = false;
    var es = new EventSource(stream);
    es.addEventListener("line", function (ev) {
      var l = JSON.parse(ev.data), id = "a" + l.attempt + "-" + l.step, anchor = id + "-L" + l.number;
      if (document.getElementById(anchor)) return;
      var head = document.getElementById(id), pre = head && head.tagName === "H3" ? head.nextElementSibling : null;
      if (!pre) {
        var logs = document.getElementById("logs-a" + l.attempt);
        if (!logs) { es.close(); location.reload(); return; }
        head = document.createElement("h3"); head.id = id; head.textContent = l.step;
        pre = document.createElement("pre"); pre.className = "log";
        logs.appendChild(head); logs.appendChild(pre);
      }
      // A step that prints runs: its card in the step graph says so before the page reloads at the end.
      var card = document.getElementById("step-" + id), badge = card && card.querySelector(".badge");
      if (badge && badge.textContent === "pending") {
        badge.textContent = "running"; badge.className = "badge run"; card.className = "step run";
      }
      var el = lineElement(l, anchor);
      pre.appendChild(el);
      if (tick && tick.checked) { pre.scrollTop = pre.scrollHeight; el.scrollIntoView({ block: "nearest" }); }
    });
    es.addEventListener("end", function () { es.close(); location.reload(); });
  }

  function refresh(part) {
    var every = Math.max(2, parseInt(part.getAttribute("data-refresh"), 10) || 5) * 1000;
    setInterval(function () {
      if (document.hidden) return;
      fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (!html) return;
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(part.id);
          var old = document.getElementById(part.id);
          if (fresh && old) old.replaceWith(document.adoptNode(fresh));
        })
        .catch(function () {});
    }, every);
  }

  var stream = me && me.getAttribute("data-stream");
  if (stream) follow(stream);
  var part = document.querySelector("[data-refresh][id]");
  if (part) refresh(part);
})();
