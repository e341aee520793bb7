/*
 * Konsol petugas: polling the queue and the open ticket, the SMS counter,
 * canned answers and revealing masked fields.
 *
 * Every text that comes from the server (and so possibly from a hostile user)
 * is put into the page with textContent or as a form value: this file never
 * builds HTML from strings. Requests carry the session cookie (same origin)
 * and, for POSTs, the CSRF token from <meta name="csrf-token">.
 */
(function () {
  "use strict";

  var POLL_MS = 2500;
  var ACTIVE_MS = 60000;
  var COUNTER_DELAY_MS = 300;

  var body = document.body;
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrfToken = meta ? meta.getAttribute("content") : "";
  var lastInput = Date.now();
  var stopped = false;

  ["keydown", "pointerdown", "wheel", "touchstart"].forEach(function (name) {
    document.addEventListener(name, function () { lastInput = Date.now(); }, { passive: true });
  });

  function activeFlag() {
    return Date.now() - lastInput < ACTIVE_MS ? "1" : "0";
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function clear(node) {
    while (node.firstChild) { node.removeChild(node.firstChild); }
  }

  function sessionEnded() {
    stopped = true;
    var banner = document.getElementById("session-banner");
    if (banner) { banner.hidden = false; }
  }

  function request(url, options) {
    var settings = options || {};
    var headers = { "Accept": "application/json" };
    if (settings.json !== undefined) {
      headers["Content-Type"] = "application/json";
      headers["X-CSRF-Token"] = csrfToken;
    }
    return fetch(url, {
      method: settings.json !== undefined ? "POST" : "GET",
      credentials: "same-origin",
      cache: "no-store",
      headers: headers,
      body: settings.json !== undefined ? JSON.stringify(settings.json) : undefined
    }).then(function (response) {
      if (response.status === 401) {
        sessionEnded();
        throw new Error("session");
      }
      return response.json().then(function (data) {
        if (!response.ok) {
          var error = new Error(data && data.message ? data.message : "HTTP " + response.status);
          error.status = response.status;
          throw error;
        }
        return data;
      });
    });
  }

  function schedule(poll) {
    if (!stopped) { window.setTimeout(poll, POLL_MS); }
  }

  /* --- the queue ------------------------------------------------------------ */

  var queueList = document.getElementById("queue-list");
  var currentId = body.getAttribute("data-ticket-id");
  var knownIds = null;
  var newIds = {};
  var baseTitle = document.title;

  function renderQueue(tickets) {
    var fresh = [];
    var ids = {};
    var focused = document.activeElement;
    var focusedHref = focused && queueList.contains(focused) ? focused.getAttribute("href") : null;
    clear(queueList);
    tickets.forEach(function (item) {
      ids[item.id] = true;
      if (knownIds !== null && !knownIds[item.id]) {
        fresh.push(item);
        newIds[item.id] = true;
      }
      var li = element("li", "queue-item status-" + item.status + (item.mine ? " mine" : ""));
      li.setAttribute("data-id", String(item.id));
      if (newIds[item.id] && String(item.id) !== currentId) { li.classList.add("new"); }
      var link = element("a");
      link.href = "/console/tickets/" + encodeURIComponent(item.id);
      if (String(item.id) === currentId) { link.setAttribute("aria-current", "page"); }
      link.appendChild(element("span", "q-title",
        "#" + item.id + " " + item.channel_label + ": " + item.reason_label));
      var metaText = item.status_label + " · menunggu " + item.waiting;
      if (item.agent) { metaText += " · " + item.agent; }
      link.appendChild(element("span", "q-meta", metaText));
      li.appendChild(link);
      queueList.appendChild(li);
      if (focusedHref !== null && link.getAttribute("href") === focusedHref) { link.focus(); }
    });
    knownIds = ids;
    var count = document.getElementById("queue-count");
    if (count) { count.textContent = "(" + tickets.length + ")"; }
    var empty = document.getElementById("queue-empty");
    if (empty) { empty.hidden = tickets.length > 0; }
    var waiting = tickets.filter(function (item) { return item.status === "open"; }).length;
    document.title = (waiting ? "(" + waiting + ") " : "") + baseTitle;
    if (fresh.length) {
      var live = document.getElementById("queue-live");
      if (live) {
        live.textContent = "Tiket baru: " + fresh.map(function (item) {
          return "#" + item.id + " " + item.channel_label + ", " + item.reason_label;
        }).join("; ");
      }
    }
  }

  function pollQueue() {
    request("/console/api/queue?active=" + activeFlag())
      .then(function (data) { renderQueue(data.tickets || []); })
      .catch(function () { /* shown by the session banner, or retried */ })
      .then(function () { schedule(pollQueue); });
  }

  if (queueList) {
    knownIds = {};
    Array.prototype.forEach.call(queueList.querySelectorAll("li[data-id]"), function (li) {
      knownIds[li.getAttribute("data-id")] = true;
    });
    schedule(pollQueue);
  }

  /* --- the open ticket ----------------------------------------------------- */

  var transcript = document.getElementById("transcript");
  var version = body.getAttribute("data-ticket-version");
  var shownStatus = null;

  var turnCount = null;

  function renderTurns(turns) {
    if (turnCount !== null && turns.length > turnCount) {
      var live = document.getElementById("transcript-live");
      var added = turns.slice(turnCount).filter(function (turn) { return turn.author === "user"; });
      if (live && added.length) { live.textContent = added.length + " pesan baru dari pengguna"; }
    }
    turnCount = turns.length;
    var nearBottom = transcript.scrollHeight - transcript.scrollTop - transcript.clientHeight < 80;
    clear(transcript);
    turns.forEach(function (turn) {
      var li = element("li", "turn turn-" + turn.author);
      var metaLine = element("p", "turn-meta");
      metaLine.appendChild(element("span", "turn-who", turn.author_label));
      metaLine.appendChild(document.createTextNode(" "));
      metaLine.appendChild(element("span", "turn-at", turn.at));
      if (turn.delivery) {
        metaLine.appendChild(document.createTextNode(" "));
        metaLine.appendChild(element("span", "turn-delivery", turn.delivery));
      }
      li.appendChild(metaLine);
      li.appendChild(element("p", "turn-text", turn.text));
      transcript.appendChild(li);
    });
    var empty = document.getElementById("transcript-empty");
    if (empty) { empty.hidden = turns.length > 0; }
    if (nearBottom) { transcript.scrollTop = transcript.scrollHeight; }
  }

  function renderNotes(notes) {
    var list = document.getElementById("notes-list");
    if (!list) { return; }
    clear(list);
    notes.forEach(function (note) {
      var li = element("li");
      var metaLine = element("p", "turn-meta");
      metaLine.appendChild(element("span", "turn-who", note.agent));
      metaLine.appendChild(document.createTextNode(" "));
      metaLine.appendChild(element("span", "turn-at", note.at));
      li.appendChild(metaLine);
      li.appendChild(element("p", "turn-text", note.text));
      list.appendChild(li);
    });
  }

  function permissions(state) {
    return [state.status, state.agent, state.can_claim, state.can_reply,
      state.can_resolve, state.can_assign].join("|");
  }

  function renderTicket(state) {
    var waiting = document.getElementById("ticket-waiting");
    if (waiting && state.waiting) { waiting.textContent = state.waiting; }
    if (state.unchanged) { return; }
    version = state.version;
    renderTurns(state.turns || []);
    renderNotes(state.notes || []);
    var status = document.getElementById("ticket-status");
    if (status) { status.textContent = state.status_label; }
    var agent = document.getElementById("ticket-agent");
    if (agent) { agent.textContent = state.agent || "belum ada"; }
    var now = permissions(state);
    if (shownStatus !== null && now !== shownStatus) {
      var changed = document.getElementById("ticket-changed");
      if (changed) { changed.hidden = false; }
    }
    shownStatus = now;
  }

  function pollTicket() {
    var url = "/console/api/tickets/" + encodeURIComponent(currentId) +
      "?active=" + activeFlag() + "&v=" + encodeURIComponent(version || "");
    request(url)
      .then(renderTicket)
      .catch(function (error) {
        if (error && error.status === 403) {
          var changed = document.getElementById("ticket-changed");
          if (changed) { changed.hidden = false; }
        }
      })
      .then(function () { schedule(pollTicket); });
  }

  if (transcript && currentId) {
    transcript.scrollTop = transcript.scrollHeight;
    request("/console/api/tickets/" + encodeURIComponent(currentId))
      .then(function (state) { shownStatus = permissions(state); renderTicket(state); })
      .catch(function () { /* retried by the poll */ })
      .then(function () { schedule(pollTicket); });
  }

  /* --- the reply box: SMS counter and canned answers ------------------------ */

  var replyText = document.getElementById("reply-text");
  var counter = document.getElementById("sms-counter");
  var counterTimer = null;

  function updateCounter() {
    request("/console/api/segments", { json: { text: replyText.value } })
      .then(function (info) {
        counter.textContent = info.label;
        counter.classList.toggle("warn", info.pages > 1 || info.replaced.length > 0 || info.too_long);
      })
      .catch(function () { /* keep the last count */ });
  }

  if (replyText && counter && body.getAttribute("data-channel") === "sms") {
    replyText.addEventListener("input", function () {
      if (counterTimer !== null) { window.clearTimeout(counterTimer); }
      counterTimer = window.setTimeout(updateCounter, COUNTER_DELAY_MS);
    });
  }

  var cannedSelect = document.getElementById("canned-select");
  var cannedInsert = document.getElementById("canned-insert");
  if (replyText && cannedSelect && cannedInsert) {
    cannedInsert.addEventListener("click", function () {
      var text = cannedSelect.value;
      var start = replyText.selectionStart || 0;
      var end = replyText.selectionEnd || 0;
      var before = replyText.value.slice(0, start);
      var after = replyText.value.slice(end);
      replyText.value = before + text + after;
      replyText.focus();
      replyText.selectionStart = replyText.selectionEnd = before.length + text.length;
      replyText.dispatchEvent(new Event("input"));
    });
  }

  /* --- revealing masked fields (audited on the server) ---------------------- */

  Array.prototype.forEach.call(document.querySelectorAll("button.reveal"), function (button) {
    button.addEventListener("click", function () {
      var field = button.getAttribute("data-field");
      var target = document.getElementById("field-" + field);
      button.disabled = true;
      request("/console/tickets/" + encodeURIComponent(currentId) + "/reveal", { json: { field: field } })
        .then(function (data) {
          if (target) {
            target.textContent = data.value || "-";
            target.classList.remove("masked");
          }
          button.hidden = true;
        })
        .catch(function (error) {
          button.disabled = false;
          if (target && error && error.message && error.message !== "session") {
            target.textContent = error.message;
          }
        });
    });
  });

  /* --- a batch's announcement: live progress --------------------------------- */

  var numberFormat = window.Intl ? new Intl.NumberFormat("id-ID") : null;

  function formatted(value) {
    return numberFormat ? numberFormat.format(value) : String(value);
  }

  function renderProgress(section, data) {
    ["sent", "delivered", "failed", "skipped", "remaining"].forEach(function (name) {
      var node = section.querySelector('[data-field="' + name + '"]');
      if (node) { node.textContent = formatted(data[name]); }
    });
    var rate = section.querySelector('[data-field="rate"]');
    if (rate) { rate.textContent = data.rate === null ? "-" : data.rate.toFixed(1).replace(".", ","); }
    var finish = section.querySelector('[data-field="finish"]');
    if (finish) { finish.textContent = data.finish_wib || (data.remaining ? "-" : "selesai"); }
    var bar = section.querySelector('[data-field="bar"]');
    if (bar) {
      bar.max = data.total;
      bar.value = data.total - data.remaining;
    }
    var paused = section.querySelector('[data-field="paused-label"]');
    if (paused) { paused.hidden = !data.paused; }
  }

  Array.prototype.forEach.call(document.querySelectorAll("section[data-progress-url]"), function (section) {
    var url = section.getAttribute("data-progress-url");
    function pollProgress() {
      request(url)
        .then(function (data) { renderProgress(section, data); })
        .catch(function () { /* retried by the next poll */ })
        .then(function () { schedule(pollProgress); });
    }
    schedule(pollProgress);
  });
})();
