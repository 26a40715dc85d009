/*! MiniRAG chat widget, its second file (docs/widget.md): minirag-widget.js loads it from next to
 * itself when the dialog first opens (and at once for a page in German or French), so the script
 * every page loads stays small. It adds the conversation to the <minirag-widget> element (streamed
 * answers and their rendering, sources, feedback, what a visitor reads when something fails, the
 * restored history) and the texts in German and French. Like the widget, it renders whatever the
 * server or the model sends as text nodes, never as HTML. */
window.MiniRAGWidgetExtra = function (Widget, h) {
  "use strict";

  var el = h.el, iconButton = h.iconButton, safeUrl = h.safeUrl, link = h.link;

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

  // A card's preview is plain text: no Markdown marks, no [n] of the document's own citations.
  function plain(text) {
    text = String(text);
    return text.replace(/!?\[([^\]\n]*)\]\([^)\s]*\)/g, "$1").replace(/\s*\[\d+(?:\s*,\s*\d+)*\]/g, "")
      .replace(/^\s*(?:#{1,6}|>|[-*+]|\d+[.)])\s+/gm, "").replace(/\*\*|__|[*`~]/g, "").replace(/\s+/g, " ")
      .trim() + (text.length < 200 ? "" : "…");
  }

  // --- The conversation: methods of the element ---

  var methods = {
    // The stored chat's newest 100 messages (minirag-widget.js calls it the first time the dialog opens).
    _history() {
      var self = this, path = "/v1/chat/" + this.chatId + "/messages?limit=100";
      this._request("GET", path).then(function (response) {
        if (!response.ok) throw response;
        var total = parseInt(response.headers.get("X-Total-Count") || "0", 10);
        if (total <= 100) return response.json();
        return self._request("GET", path + "&offset=" + (total - 100)).then(function (r) { return r.json(); });
      }).then(function (messages) {
        if (!messages.length) { self._welcome(); return; }
        self._fresh = false;
        messages.forEach(function (message) {
          if (message.role === "user") { self._addUser(message.content); return; }
          var answer = self._addAssistant(message.content, message.sources);
          answer.id = message.id;
          self._addFeedback(answer, message.feedback);
        });
        self._scrollToEnd(true);
      }).catch(function (failure) {
        if (failure && (failure.status === 404 || failure.status === 403 || failure.status === 401)) {
          self.chatId = null;
          self._save();
        }
        self._welcome();
      });
    },

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
    },

    _setSources(answer, sources) {
      answer.sources = sources || [];
      if (answer.details) answer.details.remove();
      answer.items = [];
      if (!answer.sources.length) return;
      var t = this.t;
      // Collapsed (a [n] opens it), so that five cards never push the answer out of view.
      var details = answer.details = el("details", "sources");
      details.setAttribute("part", "sources");
      details.appendChild(el("summary", null, t.sources + " (" + answer.sources.length + ")"));
      var list = details.appendChild(el("ol"));
      answer.sources.forEach(function (source, index) {
        var item = list.appendChild(el("li", "source"));
        var name = item.appendChild(el("div", "name"));
        name.appendChild(document.createTextNode((index + 1) + ". "));
        var label = String(source.source_name || source.title || t.source);
        var href = source.url && safeUrl(source.url);
        name.appendChild(href ? link(href, label) : document.createTextNode(label));
        if (source.content) item.appendChild(el("div", "snippet", plain(source.content)));
        if (typeof source.score === "number") {
          var score = Math.round(Math.min(Math.max(source.score, 0), 1) * 100);
          item.appendChild(el("div", "score", t.relevance + " " + score + "%"));
        }
        answer.items.push(item);
      });
      answer.node.appendChild(details);
    },

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
          .then(function (response) { if (!response.ok) throw response; })
          .catch(function (failure) {
            current = previous;
            show(previous);
            self._error(t.feedbackFailed, false);
            var status = failure.status || 0;
            self._report({ status: status, code: "feedback_failed", detail: status ? "HTTP " + status : String(failure) });
          });
      }
      up.addEventListener("click", function () { rate("positive"); });
      down.addEventListener("click", function () { rate("negative"); });
      show(current || null);
    },

    // What went wrong, for the page's developers: {status, code, detail, wait}.
    _problem(response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        var s = response.status, detail = typeof body.detail === "string" ? body.detail : "HTTP " + s;
        return {
          status: s, detail: detail, wait: parseInt(response.headers.get("Retry-After") || "", 10),
          code: body.code || (s === 429 ? "rate_limited" : s === 401 ? "unauthorized" : s === 404 ? "not_found"
            : s === 403 ? (/origin/i.test(detail) ? "origin_refused" : "forbidden") : s >= 500 ? "unavailable" : "failed")
        };
      });
    },

    // What a visitor reads instead: a sentence in their language, never the server's own words,
    // and whether a Retry button can help.
    _say(p) {
      var t = this.t, c = p.code;
      if (c === "network") return [t.offline, 1];
      if (c === "rate_limited") return [p.wait > 0 ? t.wait.replace("{n}", p.wait) : t.busy, 1];
      // A spent budget: no point counting down to the end of the month.
      if (c === "budget_exhausted" || c === "not_found") return [t.unavailable, 0];
      if (c === "unavailable" || c === "stream_error") return [t.unavailable, 1];
      if (/^(origin_refused|forbidden|unauthorized)$/.test(c)) return [t.notAllowed, 0];
      return [t.failed, 1];
    },

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
      function fail(problem) {
        var said = self._say(problem);
        typing.remove();
        if (answer) answer.render();
        self._error(said[0], said[1]);
        self._announce(said[0]);
        self._report(problem);
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
          return self._problem(response).then(fail);
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
            fail({ status: 200, code: "stream_error", detail: String(data.detail) });
          }
        }).then(function () {
          if (!finished) fail({ status: 200, code: "stream_error", detail: "The answer ended early." });
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
        fail({ status: 0, code: "network", detail: String(error) });
      }).then(function () {
        // A turn that started over as a new chat handed the controls to its successor.
        if (self._controller !== controller) return;
        self._controller = null;
        self._setBusy(false);
      });
    }
  };
  Object.keys(methods).forEach(function (name) { Widget.prototype[name] = methods[name]; });

  // UI text in the order of minirag-widget.js's TEXT_KEYS, one "|"-separated line per language.
  return {
    strings: {
      de: "Fragen Sie uns|Chat öffnen|Chat schließen|Neues Gespräch|Senden|Antwort stoppen|Stellen Sie eine Frage…|Ihre Frage|Der Assistent schreibt|Quellen|Relevanz|Hilfreich|Nicht hilfreich|Erneut versuchen|Gestoppt.|Gespräch wird geladen…|Neue Nachrichten|Der Assistent ist nicht erreichbar. Prüfen Sie Ihre Verbindung und versuchen Sie es erneut.|Etwas ist schiefgelaufen. Bitte versuchen Sie es erneut.|Ihre Bewertung konnte nicht gespeichert werden.|Zu viele Nachrichten. Bitte warten Sie {n} Sekunden.|Gespräch|Dieser Chat ist noch nicht eingerichtet.|Sie|Assistent|Quelle|Der Assistent ist gerade nicht verfügbar. Bitte versuchen Sie es später noch einmal.|Dieser Chat ist auf dieser Website nicht verfügbar.|Zu viele Nachrichten. Bitte warten Sie einen Moment.|Bereitgestellt von MiniRAG",
      fr: "Posez-nous une question|Ouvrir le chat|Fermer le chat|Nouvelle conversation|Envoyer|Arrêter la réponse|Posez une question…|Votre question|L'assistant écrit|Sources|pertinence|Utile|Pas utile|Réessayer|Arrêté.|Chargement de la conversation…|Nouveaux messages|Impossible de joindre l'assistant. Vérifiez votre connexion.|Une erreur est survenue. Veuillez réessayer.|Votre avis n'a pas pu être enregistré.|Trop de messages. Réessayez dans {n} secondes.|Conversation|Ce chat n'est pas encore configuré.|Vous|Assistant|Source|L'assistant n'est pas disponible pour le moment. Veuillez réessayer plus tard.|Ce chat n'est pas disponible sur ce site.|Trop de messages. Veuillez patienter un instant.|Propulsé par MiniRAG"
    }
  };
};
