/* The dashboard's inbox, live (templates/admin/inbox/inbox.html, inbox/dashboard.py).
 *
 * - Holds GET /v1/inbox/events open: that is what makes this operator "online" for hand-offs, and
 *   every hand-off, take-over, release or message refreshes the list (the server renders it).
 * - Holds the open conversation's GET /v1/chat/{id}/events: its messages and changes of who
 *   answers refresh the transcript; the visitor's typing shows under it.
 * - Sends the take-over / release / reply forms with fetch, and the operator's typing signal.
 * EventSource resumes by itself with Last-Event-ID after a drop. Where the streams are not
 * available (a platform operator reading a workspace) the list is refreshed every few seconds. */
(function () {
  "use strict";

  var root = document.querySelector("[data-inbox]");
  if (!root) return;
  var listBox = root.querySelector("[data-inbox-list]");
  var transcriptBox = root.querySelector("[data-inbox-transcript]");
  var typingLine = root.querySelector("[data-inbox-typing]");
  var replyForm = root.querySelector("[data-inbox-reply]");
  var live = root.dataset.live === "1";
  var RECENT_REFRESH_MS = 15000, TYPING_SHOWN_MS = 4000, TYPING_SENT_EVERY_MS = 3000;

  function csrfToken() {
    var input = root.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function debounce(fn, ms) {
    var timer = null;
    return function () { clearTimeout(timer); timer = setTimeout(fn, ms); };
  }

  function fetchHtml(url, box, then) {
    fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (response) { return response.ok ? response.text() : Promise.reject(response.status); })
      .then(function (html) { box.innerHTML = html; if (then) then(); })
      .catch(function () { /* kept as it is; the next event or refresh tries again */ });
  }

  // --- The list ------------------------------------------------------------------------------

  function updateWaitingCounters() {
    var count = listBox.querySelector("[data-inbox-waiting]");
    var waiting = count ? parseInt(count.dataset.inboxWaiting, 10) || 0 : 0;
    document.title = (waiting ? "(" + waiting + ") " : "") + document.title.replace(/^\(\d+\) /, "");
    document.dispatchEvent(new CustomEvent("minirag:inbox-waiting", { detail: { waiting: waiting } }));
  }

  var refreshList = debounce(function () {
    fetchHtml(root.dataset.listUrl + location.search, listBox, updateWaitingCounters);
  }, 250);

  // Bot-handled conversations publish no events (a turn stays cheap): refresh the recent part now
  // and then, only while the page is looked at.
  setInterval(function () { if (!document.hidden) refreshList(); }, live ? RECENT_REFRESH_MS : 5000);
  updateWaitingCounters();

  if (live) {
    var inboxEvents = new EventSource("/v1/inbox/events");
    ["handoff_requested", "handling", "message"].forEach(function (type) {
      inboxEvents.addEventListener(type, refreshList);
    });
    inboxEvents.addEventListener("stream-reset", refreshList);
  }

  if (!transcriptBox) return;

  // --- The open conversation -----------------------------------------------------------------

  var chatId = transcriptBox.dataset.chatId;
  var typingTimer = null;

  function scrollToEnd() {
    var last = transcriptBox.querySelector(".mr-transcript > li:last-child");
    if (last) last.scrollIntoView({ block: "nearest" });
  }

  function showReplyBox() {
    var head = transcriptBox.querySelector("[data-handling]");
    if (replyForm && head) replyForm.hidden = head.dataset.handling !== "human";
  }

  var refreshTranscript = debounce(function () {
    fetchHtml(transcriptBox.dataset.url, transcriptBox, function () { showReplyBox(); scrollToEnd(); });
  }, 100);

  function showTyping(event) {
    var data = JSON.parse(event.data || "{}");
    if (data.who !== "visitor") return;
    typingLine.textContent = "The visitor is typing…";
    typingLine.hidden = false;
    clearTimeout(typingTimer);
    typingTimer = setTimeout(function () { typingLine.hidden = true; }, TYPING_SHOWN_MS);
  }

  if (live) {
    var chatEvents = new EventSource("/v1/chat/" + chatId + "/events");
    chatEvents.addEventListener("message", function () { typingLine.hidden = true; refreshTranscript(); });
    ["handling", "handoff_requested", "stream-reset"].forEach(function (type) {
      chatEvents.addEventListener(type, refreshTranscript);
    });
    chatEvents.addEventListener("typing", showTyping);
  }
  scrollToEnd();

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), "X-Requested-With": "fetch" },
      body: body
    }).then(function (response) {
      if (response.ok) return null;
      return response.json().then(function (data) { return data.detail; }, function () {
        return "That did not work (" + response.status + "). Reload the page and try again.";
      });
    });
  }

  // Take over / hand back: the transcript's forms.
  transcriptBox.addEventListener("submit", function (event) {
    var form = event.target.closest("[data-inbox-action]");
    if (!form) return;
    event.preventDefault();
    var button = form.querySelector("button");
    button.disabled = true;
    post(form.action, new FormData(form)).then(function (problem) {
      if (problem) window.alert(problem);
      refreshTranscript();
      refreshList();
    }, function () { button.disabled = false; });
  });

  if (!replyForm) return;
  var textarea = replyForm.querySelector("textarea");
  var errorLine = replyForm.querySelector("[data-inbox-error]");
  var lastTypingSent = 0;

  textarea.addEventListener("input", function () {
    var now = Date.now();
    if (now - lastTypingSent < TYPING_SENT_EVERY_MS || !textarea.value.trim()) return;
    lastTypingSent = now;
    fetch(replyForm.dataset.typingUrl, {
      method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": csrfToken() }
    }).catch(function () { /* a missed typing signal is harmless */ });
  });

  textarea.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      replyForm.requestSubmit();
    }
  });

  replyForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var button = replyForm.querySelector("button[type=submit]");
    button.disabled = true;
    errorLine.hidden = true;
    post(replyForm.action, new FormData(replyForm)).then(function (problem) {
      button.disabled = false;
      if (problem) {
        errorLine.textContent = problem;
        errorLine.hidden = false;
        return;
      }
      textarea.value = "";
      lastTypingSent = 0;
      refreshTranscript();
    }, function () {
      button.disabled = false;
      errorLine.textContent = "Could not reach the server. Your text is still here: try again.";
      errorLine.hidden = false;
    });
  });
})();
