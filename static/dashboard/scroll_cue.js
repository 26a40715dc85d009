/* MiniRAG dashboard, every page (templates/admin/base_site.html): tables wider than the window
   scroll inside their own box — the changelist's results, a page's inline lists, and the
   dashboard's own `.mr-scroll` boxes — and show that they do: while there is more to the right
   (or left) that edge fades and a line above says so. A box that scrolls is reachable with the
   keyboard (tabindex, named region) so it can be scrolled with the arrow keys. Its own file, so
   that pages which also load dashboard.js do not run that twice. No dependencies. */
(function () {
  "use strict";

  var BOXES = "#changelist-form .results, .inline-group, .mr-scroll";
  var HINT = "Scroll sideways for more columns \u2192";

  function update(box) {
    var overflow = box.scrollWidth - box.clientWidth;
    var scrollable = overflow > 1;
    var left = Math.abs(box.scrollLeft);  // negative in right-to-left layouts
    box.classList.toggle("mr-scrollable", scrollable);
    box.classList.toggle("mr-more-right", scrollable && left < overflow - 1);
    box.classList.toggle("mr-more-left", scrollable && left > 1);
    var hint = box.mrScrollHint;
    if (scrollable && !hint) {
      hint = document.createElement("p");
      hint.className = "mr-scroll-hint";
      hint.setAttribute("aria-hidden", "true");  // the region's name says it already
      hint.textContent = HINT;
      box.parentNode.insertBefore(hint, box);
      box.mrScrollHint = hint;
    }
    if (hint) hint.hidden = !scrollable;
    if (scrollable) {
      if (!box.hasAttribute("tabindex")) box.setAttribute("tabindex", "0");
      if (!box.hasAttribute("role")) box.setAttribute("role", "region");
      if (!box.hasAttribute("aria-label") && !box.hasAttribute("aria-labelledby")) {
        box.setAttribute("aria-label", "Table (scrolls sideways)");
      }
    }
  }

  function boxes() {
    return Array.prototype.slice.call(document.querySelectorAll(BOXES));
  }

  function updateAll() {
    boxes().forEach(update);
  }

  function start() {
    boxes().forEach(function (box) {
      box.addEventListener("scroll", function () { update(box); }, {passive: true});
    });
    updateAll();
    var pending = null;
    window.addEventListener("resize", function () {
      if (pending) cancelAnimationFrame(pending);
      pending = requestAnimationFrame(updateAll);
    });
    // Collapsed sections (inline groups, <details>) change size when opened.
    document.addEventListener("toggle", updateAll, true);
    document.addEventListener("click", function () { setTimeout(updateAll, 0); });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
