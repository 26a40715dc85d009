/* The header's inbox link on every dashboard page: how many visitors wait for a person. Rendered
 * by the server; refreshed from GET /v1/inbox/status every 20 s while the page is looked at, and at
 * once by the inbox page itself (the minirag:inbox-waiting event of inbox.js). */
(function () {
  "use strict";

  var link = document.querySelector("[data-inbox-counter]");
  if (!link) return;

  function show(waiting) {
    var badge = link.querySelector(".mr-badge");
    if (!waiting) { if (badge) badge.remove(); return; }
    if (!badge) {
      badge = document.createElement("span");
      badge.className = "mr-badge mr-badge-error";
      link.append(" ", badge);
    }
    badge.textContent = waiting + " waiting";
  }

  document.addEventListener("minirag:inbox-waiting", function (event) { show(event.detail.waiting); });
  setInterval(function () {
    if (document.hidden) return;
    fetch("/v1/inbox/status", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (status) { if (status) show(status.waiting); })
      .catch(function () { /* the next round tries again */ });
  }, 20000);
})();
