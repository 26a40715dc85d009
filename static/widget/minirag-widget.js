/*! MiniRAG chat widget, <minirag-widget>: one file, no dependencies, no build step (docs/widget.md).
 * Whatever the server or the model sends is rendered as text nodes, never parsed as HTML. */
(function () {
  "use strict";

  var TAG = "minirag-widget";
  var OPTIONS = ["bot-id", "api-url", "api-token", "title", "welcome-message", "starter-questions",
    "placeholder", "position", "open", "lang"];

  // UI text: one "|"-separated line per language, in the order of TEXT_KEYS.
  var TEXT_KEYS = "title open close newChat send stop placeholder input typing sources relevance helpful unhelpful retry stopped loading jump offline failed feedbackFailed wait messages notConfigured you assistant source unavailable".split(" ");
  var STRINGS = {
    en: "Ask us|Open chat|Close chat|New conversation|Send|Stop answering|Ask a question…|Your question|Assistant is typing|Sources|relevance|Helpful|Not helpful|Retry|Stopped.|Loading the conversation…|New messages|Can't reach the assistant. Check your connection and try again.|Something went wrong. Please try again.|Your rating could not be saved.|Too many messages. Please wait {n} seconds and try again.|Conversation|This chat is not set up yet (missing bot-id, api-url or api-token).|You|Assistant|Source|The assistant is unavailable right now. Please try again later.",
    de: "Fragen Sie uns|Chat öffnen|Chat schließen|Neues Gespräch|Senden|Antwort stoppen|Stellen Sie eine Frage…|Ihre Frage|Der Assistent schreibt|Quellen|Relevanz|Hilfreich|Nicht hilfreich|Erneut versuchen|Gestoppt.|Gespräch wird geladen…|Neue Nachrichten|Der Assistent ist nicht erreichbar. Prüfen Sie Ihre Verbindung und versuchen Sie es erneut.|Etwas ist schiefgelaufen. Bitte versuchen Sie es erneut.|Ihre Bewertung konnte nicht gespeichert werden.|Zu viele Nachrichten. Bitte warten Sie {n} Sekunden.|Gespräch|Dieser Chat ist noch nicht eingerichtet.|Sie|Assistent|Quelle|Der Assistent ist gerade nicht verfügbar. Bitte versuchen Sie es später noch einmal.",
    fr: "Posez-nous une question|Ouvrir le chat|Fermer le chat|Nouvelle conversation|Envoyer|Arrêter la réponse|Posez une question…|Votre question|L'assistant écrit|Sources|pertinence|Utile|Pas utile|Réessayer|Arrêté.|Chargement de la conversation…|Nouveaux messages|Impossible de joindre l'assistant. Vérifiez votre connexion.|Une erreur est survenue. Veuillez réessayer.|Votre avis n'a pas pu être enregistré.|Trop de messages. Réessayez dans {n} secondes.|Conversation|Ce chat n'est pas encore configuré.|Vous|Assistant|Source|L'assistant n'est pas disponible pour le moment. Veuillez réessayer plus tard."
  };

  function texts(lang) {
    var values = (STRINGS[lang] || STRINGS.en).split("|"), t = {};
    TEXT_KEYS.forEach(function (key, i) { t[key] = values[i]; });
    return t;
  }

  var ICONS = {
    chat: "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z",
    close: "M6 6l12 12M18 6L6 18",
    plus: "M12 5v14M5 12h14",
    send: "M4 12l16-8-6 16-2-7-8-1z",
    stop: "M7 7h10v10H7z",
    up: "M7 10v10H4V10h3zm2 10h8.5a2 2 0 0 0 2-1.6l1.3-6A2 2 0 0 0 18.8 10H14l.7-4.2A1.6 1.6 0 0 0 12 4.6L9 10v10z",
    down: "M7 14V4H4v10h3zm2-10h8.5a2 2 0 0 1 2 1.6l1.3 6A2 2 0 0 1 18.8 14H14l.7 4.2a1.6 1.6 0 0 1-2.7 1.2L9 14V4z",
    arrow: "M12 5v14M6 13l6 6 6-6"
  };

  // Every inherited property is set on .root: the host page's CSS reaches the <minirag-widget>
  // element itself (even `* { all: unset !important }`), and the shadow tree inherits from it.
  var CSS = `
:host{all:initial;position:static!important;display:contents!important}
.root{--a:var(--minirag-accent,#2557d6);--ac:var(--minirag-accent-contrast,#fff);--bg:var(--minirag-bg,#fff);--sf:var(--minirag-surface,#f1f3f6);--tx:var(--minirag-text,#1c2430);--mu:var(--minirag-muted,#5b6472);--bd:var(--minirag-border,#dde1e7);--r:var(--minirag-radius,16px);--off:var(--minirag-offset,20px);--ls:var(--minirag-launcher-size,56px);all:initial;position:fixed;z-index:var(--minirag-z-index,2147483000);bottom:var(--off);right:var(--off);display:block;visibility:visible;opacity:1;font-family:var(--minirag-font,system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif);font-size:var(--minirag-font-size,15px);line-height:1.5;color:var(--tx);text-align:left;letter-spacing:normal;word-spacing:normal;text-transform:none;font-style:normal;font-weight:400;direction:ltr;box-sizing:border-box}
.root.left{right:auto;left:var(--off)}.root *,.root *::before,.root *::after{box-sizing:border-box}
[hidden]{display:none!important}

button{font:inherit;color:inherit;cursor:pointer;border:0;background:none;margin:0;padding:0}
button:focus-visible,a:focus-visible,textarea:focus-visible,summary:focus-visible{outline:2px solid var(--a);outline-offset:2px}
svg{width:20px;height:20px;fill:none;stroke:currentColor;stroke-width:2;stroke-linecap:round;stroke-linejoin:round;display:block}
.sr{position:absolute;width:1px;height:1px;margin:-1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;border:0}
.launcher{width:var(--ls);height:var(--ls);border-radius:50%;background:var(--a);color:var(--ac);display:flex;align-items:center;justify-content:center;box-shadow:0 6px 20px rgba(15,23,42,.28);margin-left:auto}
.launcher svg{width:26px;height:26px}
.dialog{position:absolute;bottom:calc(var(--ls) + 14px);right:0;width:var(--minirag-width,380px);height:var(--minirag-height,600px);max-height:calc(100vh - var(--ls) - 3 * var(--off));max-width:calc(100vw - 2 * var(--off));background:var(--bg);border:1px solid var(--bd);border-radius:var(--r);box-shadow:0 18px 50px rgba(15,23,42,.22);display:flex;flex-direction:column;overflow:hidden;animation:pop .18s ease-out}
.left .dialog{right:auto;left:0}@keyframes pop{from{opacity:0;transform:translateY(8px) scale(.98)}}
.head{display:flex;align-items:center;gap:4px;padding:12px 10px 12px 18px;background:var(--a);color:var(--ac)}
.title{flex:1;font-size:16px;font-weight:600;margin:0;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.icon{width:36px;height:36px;border-radius:50%;display:flex;align-items:center;justify-content:center;flex:none}
.head .icon:hover{background:rgba(255,255,255,.16)}
.log{flex:1;overflow-y:auto;padding:16px;display:flex;flex-direction:column;gap:12px;overscroll-behavior:contain}
.message{max-width:88%;padding:10px 14px;border-radius:14px;overflow-wrap:anywhere}
.message.user{align-self:flex-end;background:var(--a);color:var(--ac);border-bottom-right-radius:4px;white-space:pre-wrap}
.message.assistant{align-self:flex-start;background:var(--sf);border-bottom-left-radius:4px}
.body p{margin:0 0 8px}.body p:last-child{margin-bottom:0}
.body ul,.body ol{margin:0 0 8px;padding-left:20px}.body ul{list-style:disc}.body ol{list-style:decimal}
.body li{display:list-item;margin:2px 0}.body strong{font-weight:600}.body em{font-style:italic}
.body code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9em;background:rgba(15,23,42,.07);padding:1px 4px;border-radius:4px}
.body pre{display:block;margin:0 0 8px;padding:10px;background:#1c2430;color:#f3f5f8;border-radius:8px;overflow-x:auto;white-space:pre}
.body pre code{background:none;padding:0;color:inherit}
.body a,.source a{color:var(--a);text-decoration:underline}
.cite{display:inline;vertical-align:super;font-size:.72em;font-weight:600;color:var(--a);padding:0 1px;line-height:1}
.note{margin-top:6px;font-size:13px;color:var(--mu);font-style:italic}
.sources{margin-top:10px;border-top:1px solid var(--bd);padding-top:8px;font-size:13px}
.sources summary{cursor:pointer;color:var(--mu);font-weight:600;list-style:none;display:flex;gap:4px;align-items:center}
.sources summary::-webkit-details-marker{display:none}
.sources summary::before{content:'▸';transition:transform .15s}
.sources[open] summary::before{transform:rotate(90deg)}.sources ol{list-style:none;padding:0;margin:6px 0 0}
.source{display:block;padding:6px 8px;border-radius:8px;margin-top:4px;background:var(--bg);border:1px solid var(--bd)}
.source.hl{border-color:var(--a);box-shadow:0 0 0 1px var(--a)}
.source .name{font-weight:600;overflow-wrap:anywhere}
.source .snippet{color:var(--mu);display:-webkit-box;-webkit-line-clamp:3;-webkit-box-orient:vertical;overflow:hidden;margin-top:2px}
.source .score{color:var(--mu);font-size:12px;margin-top:2px}.actions{display:flex;gap:2px;margin-top:6px}
.actions .icon{width:30px;height:30px;color:var(--mu)}.actions svg{width:16px;height:16px}
.actions .icon:hover{background:rgba(15,23,42,.07)}
.actions .icon[aria-pressed=true]{color:var(--a);background:rgba(37,87,214,.12)}
.error{align-self:stretch;background:#fdecec;color:#8a1c1c;border:1px solid #f3c2c2;border-radius:12px;padding:10px 14px;font-size:14px;overflow-wrap:anywhere}
.retry{margin-top:6px;font-weight:600;text-decoration:underline;color:#8a1c1c}
.typing{display:flex;gap:4px;align-self:flex-start;padding:14px 16px;background:var(--sf);border-radius:14px}
.typing i{width:7px;height:7px;border-radius:50%;background:var(--mu);animation:blink 1.2s infinite}
.typing i:nth-child(2){animation-delay:.2s}.typing i:nth-child(3){animation-delay:.4s}
@keyframes blink{0%,80%,100%{opacity:.3}40%{opacity:1}}.chips{display:flex;flex-wrap:wrap;gap:6px}
.chip{border:1px solid var(--a);color:var(--a);border-radius:999px;padding:6px 12px;font-size:14px;background:var(--bg);text-align:left}
.chip:hover{background:rgba(37,87,214,.08)}.status{color:var(--mu);font-size:14px;align-self:center}
.jump{position:absolute;left:50%;transform:translateX(-50%);bottom:84px;background:var(--tx);color:var(--bg);border-radius:999px;padding:6px 12px;font-size:13px;display:flex;gap:4px;align-items:center;box-shadow:0 4px 12px rgba(0,0,0,.2)}
.jump svg{width:14px;height:14px}
.composer{display:flex;align-items:flex-end;gap:8px;padding:10px 12px;border-top:1px solid var(--bd);background:var(--bg)}
textarea{flex:1;font:inherit;color:var(--tx);background:var(--bg);border:1px solid var(--bd);border-radius:12px;padding:9px 12px;resize:none;max-height:140px;min-height:42px;line-height:1.4;margin:0;display:block}
textarea::placeholder{color:var(--mu);opacity:1}
.send,.stop{width:42px;height:42px;border-radius:50%;background:var(--a);color:var(--ac);display:flex;align-items:center;justify-content:center;flex:none}
.send:disabled{opacity:.45;cursor:default}@media (max-width:480px){.root{bottom:12px;right:12px}
.root.left{left:12px}
.dialog{position:fixed;inset:0;width:100vw;height:100vh;height:100dvh;max-width:none;max-height:none;border-radius:0;border:0;padding-bottom:env(safe-area-inset-bottom)}
.root.is-open .launcher{display:none}.message{max-width:92%}}
@media (prefers-reduced-motion:reduce){.root *{animation:none!important;transition:none!important;scroll-behavior:auto!important}
}`;

  // --- Small helpers ---

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = text;
    return node;
  }

  function icon(name) {
    var svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    var path = document.createElementNS("http://www.w3.org/2000/svg", "path");
    path.setAttribute("d", ICONS[name]);
    svg.appendChild(path);
    return svg;
  }

  function iconButton(className, name, label) {
    var button = el("button", className);
    button.type = "button";
    button.setAttribute("aria-label", label);
    button.title = label;
    button.appendChild(icon(name));
    return button;
  }

  // Only http(s) links ever become anchors: no javascript:, data: or relative surprises.
  function safeUrl(value) {
    try {
      var url = new URL(String(value));
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  function link(href, text) {
    var a = el("a", null, text);
    a.href = href;
    a.target = "_blank";
    a.rel = "noopener noreferrer nofollow";
    return a;
  }

  function randomId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join("");
  }

  // localStorage may be unavailable (privacy modes, sandboxed frames): fall back to memory.
  var memory = {};
  var store = {
    get: function (area, key) {
      try { return window[area].getItem(key); } catch (e) { return memory[area + key] || null; }
    },
    set: function (area, key, value) {
      try { window[area].setItem(key, value); } catch (e) { memory[area + key] = value; }
    }
  };

  // --- Server-sent events over fetch ---

  // Calls onEvent(name, data) for every complete `event:`/`data:` block; tolerates \r\n, comment
  // (heartbeat) lines, and chunks that split a block, a line or a multi-byte character anywhere.
  function readEvents(response, onEvent) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder("utf-8");
    var buffer = "";
    function flush(block) {
      var name = "message", data = [];
      block.split("\n").forEach(function (line) {
        if (!line || line.charAt(0) === ":") return;
        var colon = line.indexOf(":");
        var field = colon < 0 ? line : line.slice(0, colon);
        var value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") name = value;
        else if (field === "data") data.push(value);
      });
      if (!data.length) return;
      var parsed;
      try { parsed = JSON.parse(data.join("\n")); } catch (e) { return; }
      onEvent(name, parsed);
    }
    function pump() {
      return reader.read().then(function (chunk) {
        buffer += decoder.decode(chunk.value || new Uint8Array(), { stream: !chunk.done });
        buffer = buffer.replace(/\r\n?/g, "\n");
        var end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          flush(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
        if (chunk.done) {
          if (buffer.trim()) flush(buffer);
          return;
        }
        return pump();
      });
    }
    return pump();
  }

  // --- Markdown-ish rendering, built from DOM nodes only ---

  // **bold**, *italic*, `code`, [n] citations, [text](https://…) and bare links. Underscores are
  // left alone: answers quote identifiers like __init__ far more often than they emphasise.

  var INLINE = /(\*\*[^*\n]+\*\*|\*[^*\s][^*\n]*\*|`[^`\n]+`|\[\d+(?:\s*,\s*\d+)*\]|\[[^\]\n]+\]\([^)\s]+\)|https?:\/\/[^\s<>()]+[^\s<>().,;:!?'"])/;

  function inline(parent, text, cite) {
    var parts = text.split(INLINE);
    for (var i = 0; i < parts.length; i++) {
      var part = parts[i];
      if (!part) continue;
      if (i % 2 === 0) { parent.appendChild(document.createTextNode(part)); continue; }
      var first = part.charAt(0), m;
      if (part.slice(0, 2) === "**") {
        inline(parent.appendChild(el("strong")), part.slice(2, -2), cite);
      } else if (first === "*") {
        inline(parent.appendChild(el("em")), part.slice(1, -1), cite);
      } else if (first === "`") {
        parent.appendChild(el("code", null, part.slice(1, -1)));
      } else if ((m = /^\[(\d+(?:\s*,\s*\d+)*)\]$/.exec(part))) {
        m[1].split(",").forEach(function (n) { parent.appendChild(cite(parseInt(n, 10))); });
      } else if ((m = /^\[([^\]]+)\]\(([^)]+)\)$/.exec(part))) {
        var href = safeUrl(m[2]);
        parent.appendChild(href ? link(href, m[1]) : document.createTextNode(m[1]));
      } else {
        var url = safeUrl(part);
        parent.appendChild(url ? link(url, part) : document.createTextNode(part));
      }
    }
  }

  // Paragraphs, line breaks, lists, fenced code and headings; unfinished markup mid-stream simply
  // stays text until it is complete.
  function renderMarkdown(target, source, cite) {
    target.textContent = "";
    var lines = source.replace(/\r\n?/g, "\n").split("\n");
    var paragraph = null, list = null, i = 0;
    function close() { paragraph = null; list = null; }
    while (i < lines.length) {
      var line = lines[i], m;
      if (/^\s*```/.test(line)) {
        close();
        var code = [];
        i++;
        while (i < lines.length && !/^\s*```/.test(lines[i])) code.push(lines[i++]);
        var pre = target.appendChild(el("pre"));
        pre.appendChild(el("code", null, code.join("\n")));
        i++;
        continue;
      }
      if (!line.trim()) { close(); i++; continue; }
      if ((m = /^\s*#{1,6}\s+(.*)$/.exec(line))) {
        close();
        inline(target.appendChild(el("p")).appendChild(el("strong")), m[1], cite);
      } else if ((m = /^\s*(?:([-*+])|(\d+)[.)])\s+(.*)$/.exec(line))) {
        var tag = m[1] ? "ul" : "ol";
        if (!list || list.tagName.toLowerCase() !== tag) { paragraph = null; list = target.appendChild(el(tag)); }
        inline(list.appendChild(el("li")), m[3], cite);
      } else {
        list = null;
        if (paragraph) paragraph.appendChild(el("br"));
        else paragraph = target.appendChild(el("p"));
        inline(paragraph, line, cite);
      }
      i++;
    }
  }

  // --- The element ---

  class MiniragWidget extends HTMLElement {
    static get observedAttributes() { return ["title", "placeholder", "position", "lang", "welcome-message"]; }

    connectedCallback() {
      if (this._root) return;
      var lang = (this.getAttribute("lang") || document.documentElement.lang || "en").slice(0, 2).toLowerCase();
      this.t = texts(lang);
      this.botId = (this.getAttribute("bot-id") || "").trim();
      this.api = (this.getAttribute("api-url") || "").trim().replace(/\/+$/, "").replace(/\/v1$/, "");
      this.token = (this.getAttribute("api-token") || "").trim();
      this.key = "minirag:" + this.botId;
      var saved = {};
      try { saved = JSON.parse(store.get("localStorage", this.key) || "{}") || {}; } catch (e) { saved = {}; }
      this.visitorId = saved.visitorId || randomId();
      this.chatId = saved.chatId || null;
      this._save();
      this._build();
      this.setAttribute("data-ready", "");
      this._emit("minirag:ready", {});
      if (this.hasAttribute("open") || store.get("sessionStorage", this.key + ":open") === "1") this.open();
    }

    attributeChangedCallback() {
      if (this._root) this._applyTexts();
    }

    _save() {
      store.set("localStorage", this.key, JSON.stringify({ visitorId: this.visitorId, chatId: this.chatId }));
    }

    _emit(name, detail) {
      this.dispatchEvent(new CustomEvent(name, { detail: detail, bubbles: true, composed: true }));
    }

    _build() {
      var t = this.t, self = this;
      var shadow = this.attachShadow({ mode: "open" });
      // A constructed stylesheet is not subject to the host page's CSP `style-src`.
      try {
        var sheet = new CSSStyleSheet();
        sheet.replaceSync(CSS);
        shadow.adoptedStyleSheets = [sheet];
      } catch (e) {
        shadow.appendChild(el("style", null, CSS));
      }
      var uid = "mr" + Math.random().toString(36).slice(2, 8);
      var root = this._root = shadow.appendChild(el("div", "root"));
      var launcher = this._launcher = iconButton("launcher", "chat", t.open);
      launcher.setAttribute("part", "launcher");
      launcher.setAttribute("aria-expanded", "false");
      launcher.setAttribute("aria-controls", uid);
      launcher.removeAttribute("title");

      var dialog = this._dialog = el("section", "dialog");
      dialog.id = uid;
      dialog.hidden = true;
      dialog.setAttribute("part", "dialog");
      dialog.setAttribute("role", "dialog");
      dialog.setAttribute("aria-modal", "true");
      dialog.setAttribute("aria-labelledby", uid + "t");
      var head = dialog.appendChild(el("header", "head"));
      head.setAttribute("part", "header");
      this._title = head.appendChild(el("h2", "title"));
      this._title.id = uid + "t";
      this._title.setAttribute("part", "title");
      this._newButton = head.appendChild(iconButton("icon new-chat", "plus", t.newChat));
      this._closeButton = head.appendChild(iconButton("icon close", "close", t.close));

      this._log = dialog.appendChild(el("div", "log"));
      this._log.setAttribute("part", "messages");
      this._log.setAttribute("role", "region");
      this._log.setAttribute("aria-label", t.messages);
      this._log.tabIndex = 0;
      this._jump = dialog.appendChild(el("button", "jump"));
      this._jump.type = "button";
      this._jump.hidden = true;
      this._jump.appendChild(icon("arrow"));
      this._jump.appendChild(document.createTextNode(t.jump));
      // Announces "typing" once and each finished answer once; never token by token.
      this._live = dialog.appendChild(el("div", "sr"));
      this._live.setAttribute("role", "status");
      this._live.setAttribute("aria-live", "polite");

      var form = dialog.appendChild(el("form", "composer"));
      var label = form.appendChild(el("label", "sr", t.input));
      label.htmlFor = uid + "i";
      this._input = form.appendChild(el("textarea"));
      this._input.id = uid + "i";
      this._input.rows = 1;
      this._input.setAttribute("part", "input");
      this._send = form.appendChild(iconButton("send", "send", t.send));
      this._send.type = "submit";
      this._send.setAttribute("part", "send");
      this._stop = form.appendChild(iconButton("stop", "stop", t.stop));
      this._stop.hidden = true;

      root.appendChild(dialog);
      root.appendChild(launcher);
      this._applyTexts();

      launcher.addEventListener("click", function () { self.toggle(); });
      this._closeButton.addEventListener("click", function () { self.close(); });
      this._newButton.addEventListener("click", function () { self.newConversation(); });
      this._stop.addEventListener("click", function () { if (self._controller) self._controller.abort(); });
      this._jump.addEventListener("click", function () { self._scrollToEnd(true); });
      this._log.addEventListener("scroll", function () { if (self._atEnd()) self._jump.hidden = true; });
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        self.ask(self._input.value);
      });
      this._input.addEventListener("keydown", function (event) {
        if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
          event.preventDefault();
          self.ask(self._input.value);
        }
      });
      this._input.addEventListener("input", function () { self._grow(); });
      dialog.addEventListener("keydown", function (event) { self._onKey(event); });
      if (!this.botId || !this.api || !this.token) {
        this._error(t.notConfigured, false);
        this._input.disabled = this._send.disabled = true;
      }
    }

    _applyTexts() {
      var t = this.t;
      this._title.textContent = this.getAttribute("title") || t.title;
      this._input.placeholder = this.getAttribute("placeholder") || t.placeholder;
      this._root.classList.toggle("left", this.getAttribute("position") === "bottom-left");
    }

    _grow() {
      this._input.style.height = "auto";
      this._input.style.height = Math.min(this._input.scrollHeight + 2, 140) + "px";
    }

    // --- Opening, closing, keyboard ---

    get isOpen() { return !this._dialog.hidden; }

    open() {
      if (!this._root || this.isOpen) return;
      this._dialog.hidden = false;
      this._root.classList.add("is-open");
      this._launcher.setAttribute("aria-expanded", "true");
      this._launcher.setAttribute("aria-label", this.t.close);
      store.set("sessionStorage", this.key + ":open", "1");
      if (!this._started) {
        this._started = true;
        this._restore();
      }
      this._input.focus();
      this._emit("minirag:open", {});
    }

    close() {
      if (!this._root || !this.isOpen) return;
      this._dialog.hidden = true;
      this._root.classList.remove("is-open");
      this._launcher.setAttribute("aria-expanded", "false");
      this._launcher.setAttribute("aria-label", this.t.open);
      store.set("sessionStorage", this.key + ":open", "0");
      this._launcher.focus();
      this._emit("minirag:close", {});
    }

    toggle() { if (this.isOpen) this.close(); else this.open(); }

    _onKey(event) {
      if (event.key === "Escape") {
        event.preventDefault();
        this.close();
        return;
      }
      if (event.key !== "Tab") return;
      var focusable = Array.prototype.filter.call(
        this._dialog.querySelectorAll("button,a[href],textarea,summary,[tabindex='0']"),
        function (node) { return !node.disabled && node.getClientRects().length > 0; }
      );
      if (!focusable.length) return;
      var first = focusable[0], last = focusable[focusable.length - 1];
      var active = this.shadowRoot.activeElement;
      if (event.shiftKey && (active === first || focusable.indexOf(active) < 0)) {
        event.preventDefault();
        last.focus();
      } else if (!event.shiftKey && (active === last || focusable.indexOf(active) < 0)) {
        event.preventDefault();
        first.focus();
      }
    }

    // --- Scrolling that respects a reader who scrolled up ---

    _atEnd() {
      var log = this._log;
      return log.scrollHeight - log.scrollTop - log.clientHeight < 48;
    }

    _scrollToEnd(force) {
      if (force || this._stick) {
        this._log.scrollTop = this._log.scrollHeight;
        this._jump.hidden = true;
      } else {
        this._jump.hidden = false;
      }
    }

    _append(node) {
      this._stick = this._atEnd();
      this._log.appendChild(node);
      this._scrollToEnd(false);
      return node;
    }

    // --- Messages ---

    _bubble(role, who) {
      var node = el("div", "message " + role);
      node.setAttribute("part", "message");
      node.appendChild(el("span", "sr", who + ": "));
      return node;
    }

    _addUser(text) {
      var node = this._bubble("user", this.t.you);
      node.appendChild(document.createTextNode(text));
      this._append(node);
      this._scrollToEnd(true);
    }

    // One assistant answer: its text re-rendered at most once a frame while it streams.
    _addAssistant(content, sources) {
      var self = this, answer = { text: content || "", sources: sources || [], id: null };
      answer.node = this._bubble("assistant", this.t.assistant);
      answer.body = answer.node.appendChild(el("div", "body"));
      answer.cite = function (n) {
        var item = answer.items && answer.items[n - 1];
        if (!item) return document.createTextNode("[" + n + "]");
        var button = el("button", "cite", String(n));
        button.type = "button";
        button.setAttribute("aria-label", self.t.source + " " + n);
        button.addEventListener("click", function () {
          answer.details.open = true;
          answer.items.forEach(function (li) { li.classList.remove("hl"); });
          item.classList.add("hl");
          item.scrollIntoView({ block: "nearest" });
        });
        return button;
      };
      answer.render = function () {
        if (answer.frame) cancelAnimationFrame(answer.frame);
        answer.frame = 0;
        var stick = self._atEnd();
        renderMarkdown(answer.body, answer.text, answer.cite);
        self._stick = stick;
        self._scrollToEnd(false);
      };
      answer.schedule = function () {
        if (!answer.frame) answer.frame = requestAnimationFrame(answer.render);
      };
      // Complete before it joins the log, so auto-scroll sees its full height.
      this._setSources(answer, answer.sources);
      renderMarkdown(answer.body, answer.text, answer.cite);
      this._append(answer.node);
      return answer;
    }

    _setSources(answer, sources) {
      answer.sources = sources || [];
      if (answer.details) answer.details.remove();
      answer.items = [];
      if (!answer.sources.length) return;
      var t = this.t;
      var details = answer.details = el("details", "sources");
      details.setAttribute("part", "sources");
      details.open = true;
      details.appendChild(el("summary", null, t.sources + " (" + answer.sources.length + ")"));
      var list = details.appendChild(el("ol"));
      answer.sources.forEach(function (source, index) {
        var item = list.appendChild(el("li", "source"));
        var name = item.appendChild(el("div", "name"));
        name.appendChild(document.createTextNode((index + 1) + ". "));
        var label = String(source.source_name || source.title || t.source);
        var href = source.url && safeUrl(source.url);
        name.appendChild(href ? link(href, label) : document.createTextNode(label));
        if (source.content) item.appendChild(el("div", "snippet", String(source.content)));
        if (typeof source.score === "number") {
          item.appendChild(el("div", "score", t.relevance + " " + Math.round(source.score * 100) + "%"));
        }
        answer.items.push(item);
      });
      answer.node.appendChild(details);
    }

    _addFeedback(answer, current) {
      var self = this, t = this.t;
      var actions = answer.node.appendChild(el("div", "actions"));
      var up = actions.appendChild(iconButton("icon feedback-up", "up", t.helpful));
      var down = actions.appendChild(iconButton("icon feedback-down", "down", t.unhelpful));
      function show(value) {
        up.setAttribute("aria-pressed", String(value === "positive"));
        down.setAttribute("aria-pressed", String(value === "negative"));
      }
      function rate(value) {
        var next = current === value ? null : value, previous = current;
        current = next;
        show(next);
        self._request("PATCH", "/v1/chat/" + self.chatId + "/messages/" + answer.id + "/feedback", { feedback: next })
          .then(function (response) { if (!response.ok) throw new Error(); })
          .catch(function () {
            current = previous;
            show(previous);
            self._error(t.feedbackFailed, false);
          });
      }
      up.addEventListener("click", function () { rate("positive"); });
      down.addEventListener("click", function () { rate("negative"); });
      show(current || null);
    }

    _error(text, retry) {
      var self = this, box = el("div", "error");
      box.setAttribute("role", "alert");
      box.appendChild(el("div", null, text));
      if (retry) {
        var button = box.appendChild(el("button", "retry", this.t.retry));
        button.type = "button";
        button.addEventListener("click", function () {
          box.remove();
          self.ask(self._lastQuestion);
        });
      }
      this._append(box);
      this._scrollToEnd(true);
    }

    _welcome() {
      var self = this, text = this.getAttribute("welcome-message");
      if (text) this._addAssistant(text, []);
      var starters = this.getAttribute("starter-questions") || "";
      var questions = [];
      try { questions = JSON.parse(starters); } catch (e) { questions = starters.split("|"); }
      questions = (Array.isArray(questions) ? questions : []).map(function (q) { return String(q).trim(); })
        .filter(Boolean);
      if (!questions.length) return;
      this._chips = this._append(el("div", "chips"));
      questions.forEach(function (question) {
        var chip = self._chips.appendChild(el("button", "chip", question));
        chip.type = "button";
        chip.addEventListener("click", function () { self.ask(question); });
      });
    }

    _announce(text) {
      var live = this._live;
      live.textContent = "";
      setTimeout(function () { live.textContent = text; }, 50);
    }

    // --- Talking to the API ---

    _request(method, path, body, signal) {
      var headers = { Authorization: "Bearer " + this.token, "X-MiniRAG-Visitor": this.visitorId };
      if (body !== undefined) headers["Content-Type"] = "application/json";
      if (path === "/v1/chat") headers.Accept = "text/event-stream";
      return fetch(this.api + path, {
        method: method, headers: headers, mode: "cors", credentials: "omit", signal: signal,
        body: body === undefined ? undefined : JSON.stringify(body)
      });
    }

    _problem(response) {
      var t = this.t;
      return response.json().catch(function () { return {}; }).then(function (body) {
        // A spent budget: no point counting down to the end of the month.
        if (response.status === 429 && body.code === "budget_exhausted") return t.unavailable;
        if (response.status === 429) {
          var wait = parseInt(response.headers.get("Retry-After") || "", 10);
          return wait > 0 ? t.wait.replace("{n}", wait) : (body.detail || t.failed);
        }
        var detail = body && body.detail;
        return typeof detail === "string" && detail ? detail : t.failed;
      });
    }

    // History of the stored chat, newest 100 messages, restored the first time the dialog opens.
    _restore() {
      var self = this;
      if (!this.chatId || !this.token) { this._welcome(); return; }
      var status = this._append(el("div", "status", this.t.loading));
      var path = "/v1/chat/" + this.chatId + "/messages?limit=100";
      this._request("GET", path).then(function (response) {
        if (!response.ok) throw response;
        var total = parseInt(response.headers.get("X-Total-Count") || "0", 10);
        if (total <= 100) return response.json();
        return self._request("GET", path + "&offset=" + (total - 100)).then(function (r) { return r.json(); });
      }).then(function (messages) {
        status.remove();
        if (!messages.length) { self._welcome(); return; }
        messages.forEach(function (message) {
          if (message.role === "user") { self._addUser(message.content); return; }
          var answer = self._addAssistant(message.content, message.sources);
          answer.id = message.id;
          self._addFeedback(answer, message.feedback);
        });
        self._scrollToEnd(true);
      }).catch(function (failure) {
        status.remove();
        if (failure && (failure.status === 404 || failure.status === 403 || failure.status === 401)) {
          self.chatId = null;
          self._save();
        }
        self._welcome();
      });
    }

    newConversation() {
      if (this._controller) this._controller.abort();
      this.chatId = null;
      this._save();
      this._log.textContent = "";
      this._chips = null;
      this._started = true;
      this._welcome();
      if (this.isOpen) this._input.focus();
    }

    ask(text) {
      text = String(text || "").trim();
      if (!text || this._busy || !this.token) return;
      this.open();
      if (this._chips) { this._chips.remove(); this._chips = null; }
      this._input.value = "";
      this._grow();
      this._lastQuestion = text;
      this._addUser(text);
      this._turn(text, true);
    }

    _setBusy(busy) {
      // Hiding the focused button would drop focus out of the dialog: hand it over first.
      var active = this.shadowRoot.activeElement;
      this._busy = busy;
      this._send.hidden = busy;
      this._stop.hidden = !busy;
      if (active === this._stop || active === this._send) (busy ? this._stop : this._input).focus();
    }

    _turn(text, mayStartOver) {
      var self = this, t = this.t, answer = null, finished = false;
      var controller = this._controller = new AbortController();
      var typing = this._append(el("div", "typing"));
      typing.appendChild(el("span", "sr", t.typing));
      typing.appendChild(el("i"));
      typing.appendChild(el("i"));
      typing.appendChild(el("i"));
      this._setBusy(true);
      this._announce(t.typing);
      var body = { bot_profile_id: this.botId, message: text, stream: true };
      if (this.chatId) body.chat_id = this.chatId;
      var sources = [];

      function ensureAnswer() {
        if (!answer) {
          typing.remove();
          answer = self._addAssistant("", sources);
        }
        return answer;
      }
      function fail(message, detail, status) {
        typing.remove();
        if (answer) answer.render();
        self._error(message, true);
        self._announce(message);
        self._emit("minirag:error", { status: status || null, detail: detail || message });
      }

      return this._request("POST", "/v1/chat", body, controller.signal).then(function (response) {
        if (response.status === 404 && body.chat_id && mayStartOver) {
          // The stored chat is gone (deleted, or another visitor's): start a new one.
          self.chatId = null;
          self._save();
          typing.remove();
          self._setBusy(false);
          return self._turn(text, false);
        }
        if (!response.ok || !response.body) {
          return self._problem(response).then(function (message) { fail(message, message, response.status); });
        }
        return readEvents(response, function (name, data) {
          if (name === "sources") {
            sources = data.sources || [];
          } else if (name === "delta") {
            ensureAnswer().text += data.content || "";
            answer.schedule();
          } else if (name === "done") {
            finished = true;
            ensureAnswer();
            if (data.chat_id) { self.chatId = data.chat_id; self._save(); }
            answer.id = data.message_id;
            answer.render();
            self._stick = self._atEnd();
            if (answer.id) self._addFeedback(answer, null);
            self._scrollToEnd(false);
            self._announce(answer.text);
            self._emit("minirag:answer", {
              chatId: self.chatId, messageId: answer.id, content: answer.text, sources: sources
            });
          } else if (name === "error") {
            finished = true;
            var detail = data.detail || t.failed;
            fail(detail, detail, 200);
          }
        }).then(function () {
          if (!finished) fail(t.failed, "The answer ended early.", 200);
        });
      }).catch(function (error) {
        if (error && error.name === "AbortError") {
          typing.remove();
          if (answer) {
            answer.render();
            answer.node.appendChild(el("div", "note", t.stopped));
          }
          return;
        }
        fail(t.offline, String(error), 0);
      }).then(function () {
        // A turn that started over as a new chat handed the controls to its successor.
        if (self._controller !== controller) return;
        self._controller = null;
        self._setBusy(false);
      });
    }
  }

  // --- Registration and <script data-…> mounting ---

  if (!customElements.get(TAG)) customElements.define(TAG, MiniragWidget);

  function mountScripts() {
    var scripts = [];
    if (document.currentScript && document.currentScript.hasAttribute("data-bot-id")) scripts.push(document.currentScript);
    Array.prototype.forEach.call(document.querySelectorAll("script[data-bot-id][src*='minirag-widget']"), function (s) {
      if (scripts.indexOf(s) < 0) scripts.push(s);
    });
    scripts.forEach(function (script) {
      if (script.hasAttribute("data-minirag-mounted")) return;
      script.setAttribute("data-minirag-mounted", "");
      var widget = document.createElement(TAG);
      OPTIONS.forEach(function (name) {
        if (script.hasAttribute("data-" + name)) widget.setAttribute(name, script.getAttribute("data-" + name));
      });
      var attach = function () { document.body.appendChild(widget); };
      if (document.body) attach();
      else document.addEventListener("DOMContentLoaded", attach);
    });
  }

  mountScripts();
})();
