/*! MiniRAG chat widget, <minirag-widget>: no dependencies, no build step (docs/widget.md). The
 * conversation itself and the texts in other languages are in minirag-widget-extra.js, loaded from
 * next to this script when needed. Whatever the server or the model sends is rendered as text
 * nodes, never parsed as HTML. */
(function () {
  "use strict";

  var TAG = "minirag-widget";
  // Attributes (or data- attributes of the script tag); those that are also stored settings of the
  // bot (GET /v1/bot-profiles/{id}/widget-config, same names with "_") win over them.
  var OPTIONS = ["bot-id", "api-url", "api-token", "title", "welcome-message", "starter-questions",
    "placeholder", "position", "open", "lang", "accent-color", "launcher", "avatar-url", "powered-by"];
  // Where this script came from: its second file, minirag-widget-extra.js, is loaded from next to it.
  var SRC = document.currentScript && document.currentScript.src;
  var EXTRA = null, extraLoad = null;

  // UI text: one "|"-separated line per language, in the order of TEXT_KEYS; English here, the
  // others in the second file.
  var TEXT_KEYS = "title open close newChat send stop placeholder input typing sources relevance helpful unhelpful retry stopped loading jump offline failed feedbackFailed wait messages notConfigured you assistant source unavailable notAllowed busy poweredBy person toBot waiting joining chatting backWithBot isTyping leaveAt leaveSoon later email badEmail emailSaved writeFirst team noPerson".split(" ");
  var EN = "Ask us|Open chat|Close chat|New conversation|Send|Stop answering|Ask a question…|Your question|Assistant is typing|Sources|relevance|Helpful|Not helpful|Retry|Stopped.|Loading the conversation…|New messages|Can't reach the assistant. Check your connection and try again.|Something went wrong. Please try again.|Your rating could not be saved.|Too many messages. Please wait {n} seconds and try again.|Conversation|This chat is not set up yet.|You|Assistant|Source|The assistant is unavailable right now. Please try again later.|This chat isn't available on this website.|Too many messages. Please wait a moment and try again.|Powered by MiniRAG|Talk to a person|Back to the assistant|Waiting for a person…|A person will join shortly.|You're chatting with {name}|You're back with the assistant.|{name} is typing…|Nobody is available right now. Leave your email and we'll answer there when we're back ({time}).|Nobody is available right now. Leave your email and we'll answer there as soon as someone is back.|Nobody is available right now. We'll answer as soon as someone is back.|Your email|Please enter a valid email address.|Thanks! We'll answer at {email}.|Write your question below: a person will read it.|Support|Talking to a person isn't available right now.";

  function texts(lang) {
    var en = EN.split("|"), values = ((EXTRA && EXTRA.strings[lang]) || EN).split("|"), t = {};
    TEXT_KEYS.forEach(function (key, i) { t[key] = values[i] || en[i]; });
    return t;
  }

  // The second file: the conversation and the other languages' texts. Resolves once it ran, or
  // failed to load (then English stays, and asking says the assistant cannot be reached).
  function loadExtra(api) {
    return extraLoad || (extraLoad = new Promise(function (resolve) {
      var script = document.createElement("script");
      script.src = SRC ? SRC.split(/[?#]/)[0].replace(/[^/]*$/, "minirag-widget-extra.js")
        : api + "/dashboard/widget/minirag-widget-extra.js";
      script.async = true;
      script.onload = script.onerror = function () {
        try {
          EXTRA = window.MiniRAGWidgetExtra(MiniragWidget, { el: el, iconButton: iconButton, safeUrl: safeUrl, link: link });
        } catch (e) {
          extraLoad = null; // tried again when next needed
          console.warn("MiniRAG widget: " + script.src + " could not be loaded.");
        }
        resolve();
      };
      document.head.appendChild(script);
    }));
  }

  var ICONS = {
    chat: "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z",
    help: "M12 22a10 10 0 1 0 0-20 10 10 0 0 0 0 20zM9.1 9a3 3 0 0 1 5.8 1c0 2-3 3-3 3M12 17h.01",
    sparkle: "M12 3l2 6 6 2-6 2-2 6-2-6-6-2 6-2zM19 3v4M17 5h4",
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
.root{--a:var(--minirag-accent,#2557d6);--ac:var(--minirag-accent-contrast,var(--mc,#fff));--bg:var(--minirag-bg,#fff);--sf:var(--minirag-surface,#f1f3f6);--tx:var(--minirag-text,#1c2430);--mu:var(--minirag-muted,#5b6472);--bd:var(--minirag-border,#dde1e7);--r:var(--minirag-radius,16px);--off:var(--minirag-offset,20px);--ls:var(--minirag-launcher-size,56px);all:initial;position:fixed;z-index:var(--minirag-z-index,2147483000);bottom:var(--off);right:var(--off);display:block;visibility:visible;opacity:1;font-family:var(--minirag-font,system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif);font-size:var(--minirag-font-size,15px);line-height:1.5;color:var(--tx);text-align:left;letter-spacing:normal;word-spacing:normal;text-transform:none;font-style:normal;font-weight:400;direction:ltr;box-sizing:border-box}
.root.left{right:auto;left:var(--off)}.root *,.root *::before,.root *::after{box-sizing:border-box}
[hidden]{display:none!important}

button{font:inherit;color:inherit;cursor:pointer;border:0;background:none;margin:0;padding:0}
button:focus-visible,a:focus-visible,textarea:focus-visible,summary:focus-visible{outline:2px solid var(--a);outline-offset:2px}
svg{width:20px;height:20px;fill:none;stroke:currentColor;stroke-width:2;stroke-linecap:round;stroke-linejoin:round;display:block}
.sr{position:absolute;width:1px;height:1px;margin:-1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;border:0}
.launcher{width:var(--ls);height:var(--ls);border-radius:50%;background:var(--a);color:var(--ac);display:flex;align-items:center;justify-content:center;box-shadow:0 6px 20px rgba(15,23,42,.28);margin-left:auto}
.launcher svg{width:26px;height:26px}.launcher img,.avatar{width:100%;height:100%;border-radius:50%;object-fit:cover}
.avatar{width:30px;height:30px;flex:none;margin-right:6px}
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
.welcome{white-space:pre-wrap}.body p{margin:0 0 8px}.body p:last-child{margin-bottom:0}
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
.sources[open] summary::before{transform:rotate(90deg)}.sources ol{list-style:none;padding:0 2px 2px;margin:6px 0 0;max-height:220px;overflow-y:auto}
.source{display:block;padding:6px 8px;border-radius:8px;margin-top:4px;background:var(--bg);border:1px solid var(--bd)}
.source.hl{border-color:var(--a);box-shadow:0 0 0 1px var(--a)}
.source .name{font-weight:600;overflow-wrap:anywhere}
.source .snippet{color:var(--mu);display:-webkit-box;-webkit-line-clamp:3;-webkit-box-orient:vertical;overflow:hidden;margin-top:2px}
.source .score{color:var(--mu);font-size:12px;margin-top:2px}.actions{display:flex;gap:2px;margin-top:6px}
.actions .icon{width:30px;height:30px;color:var(--mu)}.actions svg{width:16px;height:16px}
.actions .icon:hover{background:rgba(15,23,42,.07)}
.actions .icon[aria-pressed=true]{color:var(--a);background:color-mix(in srgb,var(--a) 12%,transparent)}
.error{align-self:stretch;background:#fdecec;color:#8a1c1c;border:1px solid #f3c2c2;border-radius:12px;padding:10px 14px;font-size:14px;overflow-wrap:anywhere}
.retry{margin-top:6px;font-weight:600;text-decoration:underline;color:#8a1c1c}
.typing{display:flex;gap:4px;align-self:flex-start;padding:14px 16px;background:var(--sf);border-radius:14px}
.typing i{width:7px;height:7px;border-radius:50%;background:var(--mu);animation:blink 1.2s infinite}
.typing i:nth-child(2){animation-delay:.2s}.typing i:nth-child(3){animation-delay:.4s}
@keyframes blink{0%,80%,100%{opacity:.3}40%{opacity:1}}.chips{display:flex;flex-wrap:wrap;gap:6px}
.chip{border:1px solid var(--a);color:var(--a);border-radius:999px;padding:6px 12px;font-size:14px;background:var(--bg);text-align:left}
.chip:hover{background:color-mix(in srgb,var(--a) 8%,transparent)}.status{color:var(--mu);font-size:14px;align-self:center;text-align:center}
.message.operator{align-self:flex-start;background:var(--bg);border:1px solid var(--bd);border-left:3px solid var(--a);border-bottom-left-radius:4px}
.who{font-size:12px;font-weight:600;color:var(--mu);margin-bottom:2px}.offer{display:block;margin-top:8px}
.bar{display:flex;align-items:center;justify-content:space-between;gap:8px;padding:6px 14px;border-top:1px solid var(--bd);font-size:13px;color:var(--mu)}
.link{color:var(--a);font-weight:600;text-decoration:underline;font-size:13px;text-align:left}
.card{align-self:stretch;border:1px solid var(--bd);border-radius:12px;padding:10px 14px;font-size:14px;display:flex;flex-direction:column;gap:6px}
.card p{margin:0}.card div{display:flex;gap:8px}.card [role=alert]{color:#8a1c1c;font-size:13px}
.card input{flex:1;min-width:0;font:inherit;color:var(--tx);background:var(--bg);border:1px solid var(--bd);border-radius:8px;padding:6px 10px;margin:0}
.card input:focus-visible{outline:2px solid var(--a);outline-offset:1px}.card input[aria-invalid=true]{border-color:#8a1c1c}
.jump{position:absolute;left:50%;transform:translateX(-50%);bottom:84px;background:var(--tx);color:var(--bg);border-radius:999px;padding:6px 12px;font-size:13px;display:flex;gap:4px;align-items:center;box-shadow:0 4px 12px rgba(0,0,0,.2)}
.jump svg{width:14px;height:14px}
.composer{display:flex;align-items:flex-end;gap:8px;padding:10px 12px;border-top:1px solid var(--bd);background:var(--bg)}
textarea{flex:1;font:inherit;color:var(--tx);background:var(--bg);border:1px solid var(--bd);border-radius:12px;padding:9px 12px;resize:none;max-height:140px;min-height:42px;line-height:1.4;margin:0;display:block}
textarea::placeholder{color:var(--mu);opacity:1}
.send,.stop{width:42px;height:42px;border-radius:50%;background:var(--a);color:var(--ac);display:flex;align-items:center;justify-content:center;flex:none}
.send:disabled{opacity:.45;cursor:default}.pb{font-size:11px;color:var(--mu);text-align:center;padding:0 0 6px}@media (max-width:480px){.root{bottom:12px;right:12px}
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

  // Text on the accent colour: dark on a light one, white on a dark one (WCAG contrast).
  function ink(color) {
    var m = /^#([0-9a-f]{6})$/i.exec(color || "");
    if (!m) return "";
    var n = parseInt(m[1], 16), l = [n >> 16, n >> 8 & 255, n & 255].map(function (c) {
      c /= 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * l[0] + 0.7152 * l[1] + 0.0722 * l[2] > 0.2 ? "#1c2430" : "#fff";
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

  // --- The element ---

  class MiniragWidget extends HTMLElement {
    static get observedAttributes() {
      return ["title", "placeholder", "position", "lang", "welcome-message", "starter-questions", "accent-color",
        "launcher", "avatar-url", "powered-by"];
    }

    // Built once the bot's stored appearance is read (or could not be, or took over 3 s), so it
    // shows in its colours and language from the start.
    connectedCallback() {
      // Moved in the page: the chat's live events (second file) resume where they stopped.
      if (this._cfg) { if (this._follow) this._follow(); return; }
      var self = this, started = false;
      this._cfg = {};
      this.botId = (this.getAttribute("bot-id") || "").trim();
      this.api = (this.getAttribute("api-url") || "").trim().replace(/\/+$/, "").replace(/\/v1$/, "");
      this.token = (this.getAttribute("api-token") || "").trim();
      this.key = "minirag:" + this.botId;
      var saved = {};
      try { saved = JSON.parse(store.get("localStorage", this.key) || "{}") || {}; } catch (e) { saved = {}; }
      this.visitorId = saved.visitorId || randomId();
      this.chatId = saved.chatId || null;
      this._save();
      function start() {
        if (started) return;
        started = true;
        self.t = texts(self._lang());
        self._build();
        self.setAttribute("data-ready", "");
        self._emit("minirag:ready", {});
        if (self.hasAttribute("open") || store.get("sessionStorage", self.key + ":open") === "1") self.open();
      }
      setTimeout(start, 3000);
      var stored = this.hasAttribute("preview") || !this.botId || !this.api || !this.token ? Promise.resolve()
        : this._request("GET", "/v1/bot-profiles/" + encodeURIComponent(this.botId) + "/widget-config")
          .then(function (response) {
            return response.json().then(function (body) {
              if (!response.ok) throw new Error(body.detail || "HTTP " + response.status);
              return body;
            });
          }).then(function (config) {
            self._cfg = config || {};
            if (started) self.attributeChangedCallback("welcome-message");
          }).catch(function (error) {
            console.warn("MiniRAG widget: its stored appearance could not be read, so it uses its attributes and " +
              "defaults: " + error.message);
          });
      stored.then(function () { return self._lang() === "en" ? 0 : loadExtra(self.api); }).then(start);
    }

    // Taken out of the page: no live events for a widget nobody sees.
    disconnectedCallback() { if (this._unfollow) this._unfollow(); }

    // A stored setting, unless the element's attribute of the same name says otherwise.
    _opt(name) {
      return this.hasAttribute(name) ? this.getAttribute(name) : this._cfg[name.replace(/-/g, "_")];
    }

    _lang() {
      return String(this._opt("lang") || document.documentElement.lang || "en").slice(0, 2).toLowerCase();
    }

    attributeChangedCallback(name) {
      if (!this._root) return;
      this._applyTexts();
      // The welcome (nothing asked yet) follows its settings, as the dashboard's preview changes them.
      if (this._fresh && /^(welcome|starter)/.test(name)) {
        this._log.textContent = "";
        this._welcome();
      }
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
      this._avatar = head.appendChild(el("img", "avatar"));
      this._avatar.alt = "";
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
      this._powered = dialog.appendChild(el("div", "pb", t.poweredBy));

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
      this._input.addEventListener("input", function () {
        self._grow();
        if (self._typed) self._typed(); // tells a person who handles the chat (second file)
      });
      dialog.addEventListener("keydown", function (event) { self._onKey(event); });
      // A preview (the dashboard's) shows the look only: nothing to send, nothing to complain about.
      var preview = this.hasAttribute("preview");
      if (preview || !this.botId || !this.api || !this.token) this._input.disabled = this._send.disabled = true;
      if (!preview && this._input.disabled) {
        this._error(t.notConfigured, false);
        this._report({ status: 0, code: "not_configured", detail: "bot-id, api-url or api-token is missing." });
      }
    }

    _applyTexts() {
      var t = this.t, root = this._root, style = root.style;
      var powered = this._opt("powered-by"), launcher = this._opt("launcher"), avatar = this._opt("avatar-url");
      this._title.textContent = this._opt("title") || t.title;
      this._input.placeholder = this.getAttribute("placeholder") || t.placeholder;
      root.classList.toggle("left", this._opt("position") === "bottom-left");
      this._powered.hidden = !(powered === true || powered === "" || /^(true|on|yes|1)$/i.test(powered));
      // The accent: this attribute, else the page's --minirag-accent, else the stored colour.
      var color = this.getAttribute("accent-color");
      if (!color || !window.CSS.supports("color", color)) {
        color = getComputedStyle(this).getPropertyValue("--minirag-accent").trim() ? ""
          : (/^#[0-9a-f]{6}$/i.test(this._cfg.accent_color) ? this._cfg.accent_color : "");
      }
      if (color) style.setProperty("--a", color); else style.removeProperty("--a");
      style.setProperty("--mc", ink(color));
      // The launcher's icon, or an https avatar (the icon again if the image cannot be loaded).
      avatar = /^https:/i.test(avatar) && safeUrl(avatar);
      launcher = /^(help|sparkle)$/.test(launcher) ? launcher : "chat";
      if (this._face === launcher + avatar) return;
      this._face = launcher + avatar;
      var button = this._launcher, image = this._avatar;
      button.textContent = "";
      var svg = button.appendChild(icon(launcher));
      image.hidden = !avatar;
      if (!avatar) return;
      var face = button.appendChild(el("img"));
      face.alt = "";
      svg.setAttribute("hidden", "");
      face.onerror = function () {
        face.remove();
        svg.removeAttribute("hidden");
        image.hidden = true;
      };
      face.referrerPolicy = image.referrerPolicy = "no-referrer";
      face.src = image.src = avatar;
    }

    _grow() {
      this._input.style.height = "auto";
      this._input.style.height = Math.min(this._input.scrollHeight + 2, 140) + "px";
    }

    // --- Opening, closing, keyboard ---

    get isOpen() { return !this._dialog.hidden; }

    open() {
      var self = this;
      if (!this._root || this.isOpen) return;
      this._dialog.hidden = false;
      this._root.classList.add("is-open");
      this._launcher.setAttribute("aria-expanded", "true");
      this._launcher.setAttribute("aria-label", this.t.close);
      store.set("sessionStorage", this.key + ":open", "1");
      // Ready before a question is typed; it adds "Talk to a person" when the bot offers it.
      if (this.token && !this.hasAttribute("preview")) {
        loadExtra(this.api).then(function () { if (self._person) self._person(); });
      }
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
        this._dialog.querySelectorAll("button,a[href],input,textarea,summary,[tabindex='0']"),
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
      var self = this, text = this._opt("welcome-message"), questions = this._opt("starter-questions") || [];
      this._fresh = true;
      this._chips = null;
      if (text) this._append(this._bubble("assistant", this.t.assistant)).appendChild(el("div", "body welcome", String(text)));
      if (!Array.isArray(questions)) {
        try { questions = JSON.parse(questions); } catch (e) { questions = String(questions).split("|"); }
      }
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

    // The technical cause goes to the console and to a `minirag:error` event on the element.
    _report(p) {
      var setup = /^(origin_refused|forbidden|unauthorized|not_configured)$/.test(p.code);
      console[setup ? "error" : "warn"]("MiniRAG widget: " + p.detail + " (" + p.code + ", HTTP " + p.status + ")");
      this._emit("minirag:error", { status: p.status, code: p.code, detail: p.detail });
    }

    // The stored chat is restored (by the second file) the first time the dialog opens.
    _restore() {
      var self = this;
      if (!this.chatId || !this.token) { this._welcome(); return; }
      var status = this._append(el("div", "status", this.t.loading));
      loadExtra(this.api).then(function () {
        status.remove();
        if (self._history) self._history(); else self._welcome();
      });
    }

    newConversation() {
      if (this._controller) this._controller.abort();
      this.chatId = null;
      this._save();
      this._log.textContent = "";
      if (this._reset) this._reset(); // a new chat has the bot: no person, no live events
      this._started = true;
      this._welcome();
      if (this.isOpen) this._input.focus();
    }

    ask(text) {
      var self = this;
      text = String(text || "").trim();
      if (!text || this._busy || !this.token || !this._root) return;
      this.open();
      this._fresh = false;
      if (this._chips) { this._chips.remove(); this._chips = null; }
      this._input.value = "";
      this._grow();
      this._lastQuestion = text;
      this._addUser(text);
      this._setBusy(true);
      // The conversation is in the second file (loaded when the dialog opened, most likely).
      loadExtra(this.api).then(function () {
        if (self._turn) return self._turn(text, true);
        self._setBusy(false);
        self._error(self.t.offline, true);
        self._report({ status: 0, code: "network", detail: "minirag-widget-extra.js could not be loaded." });
      });
    }

    _setBusy(busy) {
      // Hiding the focused button would drop focus out of the dialog: hand it over first.
      var active = this.shadowRoot.activeElement;
      this._busy = busy;
      this._send.hidden = busy;
      this._stop.hidden = !busy;
      if (active === this._stop || active === this._send) (busy ? this._stop : this._input).focus();
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
