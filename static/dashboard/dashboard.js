/* MiniRAG dashboard: copy buttons, and live progress of sources on the page (polls while any
   ingestion is queued or running: the status badge, the bar, its line, and the row's chunk count
   and error). No build step, no dependencies. */
(function () {
  "use strict";

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-copy-target]");
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-copy-target"));
    if (!source) return;
    var text = source.textContent;
    var done = function () {
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = "Copy"; }, 2000);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { selectText(source); });
    } else {
      selectText(source);
      try { if (document.execCommand("copy")) done(); } catch (e) { /* selected: the user copies */ }
    }
  });

  function selectText(element) {
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  var POLL_MS = 2000;

  function progressElements() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-source-progress]"));
  }

  function progressUrl() {
    // The source list or a source's page: the progress route sits under the model's URL.
    var match = window.location.pathname.match(/^(.*\/sources\/source\/)/);
    return match ? match[1] + "progress/" : null;
  }

  function render(element, state) {
    var badge = element.querySelector(".mr-badge");
    if (badge) {
      badge.textContent = state.label;
      badge.setAttribute("data-status", state.status);
      badge.className = "mr-badge mr-badge-" + ({ready: "ok", error: "error", queued: "info", processing: "info"}[state.status] || "muted");
    }
    var fill = element.querySelector(".mr-bar-fill");
    if (fill) fill.style.width = state.percent + "%";
    var text = element.querySelector(".mr-progress-text");
    if (text) text.textContent = state.detail || "";
    // The same row's other live columns (the list only; a source's own page has its fields).
    var id = element.getAttribute("data-source-progress");
    var row = element.closest("tr");
    var chunks = row && row.querySelector('[data-source-chunks="' + id + '"]');
    if (chunks) chunks.textContent = state.chunk_count;
    var error = row && row.querySelector('[data-source-error="' + id + '"]');
    if (error) error.textContent = truncate(state.error_message || "", 120);
  }

  function truncate(text, length) {  // as the server's Truncator.chars: the ellipsis counts
    return text.length > length ? text.slice(0, length - 1) + "\u2026" : text;
  }

  function poll() {
    var elements = progressElements();
    var url = progressUrl();
    if (!elements.length || !url) return;
    var inFlight = elements.filter(function (el) {
      var badge = el.querySelector(".mr-badge");
      var status = badge && badge.getAttribute("data-status");
      return status === "queued" || status === "processing";
    });
    if (!inFlight.length) return;
    var query = inFlight.map(function (el) { return "id=" + encodeURIComponent(el.getAttribute("data-source-progress")); }).join("&");
    fetch(url + "?" + query, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) { return response.ok ? response.json() : {}; })
      .then(function (states) {
        inFlight.forEach(function (el) {
          var state = states[el.getAttribute("data-source-progress")];
          if (state) render(el, state);
        });
      })
      .catch(function () { /* try again on the next tick */ })
      .then(function () { setTimeout(poll, POLL_MS); });
  }

  document.addEventListener("DOMContentLoaded", function () { setTimeout(poll, POLL_MS); });
})();
