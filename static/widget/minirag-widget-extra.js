/*! MiniRAG chat widget, its second file (docs/widget.md): minirag-widget.js loads it from next to
 * itself when the dialog first opens (and at once for a page in German or French), so the script
 * every page loads stays small. It adds the conversation to the <minirag-widget> element (streamed
 * answers and their rendering, sources, feedback, what a visitor reads when something fails, the
 * restored history, talking to a person) and the texts in German and French. Like the widget, it
 * renders whatever the server or the model sends as text nodes, never as HTML. */
window.MiniRAGWidgetExtra = function (Widget, h) {
  "use strict";

  var el = h.el, iconButton = h.iconButton, safeUrl = h.safeUrl, link = h.link;

  // --- Server-sent events over fetch ---

  // Calls onEvent(name, data, id) for every complete `event:`/`data:` block (data {} when it is not
  // JSON: django-eventstream's stream-open and keep-alive carry none); tolerates \r\n, comment
  // (heartbeat) lines, and chunks that split a block, a line or a multi-byte character anywhere.
  function readEvents(response, onEvent) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder("utf-8");
    var buffer = "";
    function flush(block) {
      var name = "message", data = [], id;
      block.split("\n").forEach(function (line) {
        if (!line || line.charAt(0) === ":") return;
        var colon = line.indexOf(":");
        var field = colon < 0 ? line : line.slice(0, colon);
        var value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") name = value;
        else if (field === "data") data.push(value);
        else if (field === "id") id = value;
      });
      if (!data.length) return;
      var parsed;
      try { parsed = JSON.parse(data.join("\n")); } catch (e) { parsed = {}; }
      onEvent(name, parsed || {}, id);
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
    // The stored chat's newest 100 messages (minirag-widget.js calls it the first time the dialog
    // opens), and who answers it: a chat a person handles follows its live events again.
    _history() {
      var self = this, chat = this._request("GET", "/v1/chat/" + this.chatId).then(function (response) {
        return response.ok ? response.json() : null;
      }, function () { return null; });
      this._messages().then(function (messages) {
        if (!messages.length) { self._welcome(); return; }
        self._fresh = false;
        messages.forEach(function (message) { self._show(message); });
        self._scrollToEnd(true);
        return chat.then(function (shape) { self._apply(shape, true); });
      }).catch(function (failure) {
        if (failure && (failure.status === 404 || failure.status === 403 || failure.status === 401)) {
          self.chatId = null;
          self._save();
        }
        self._welcome();
      });
    },

    // The chat's newest 100 messages, oldest first (throws the response when it is not ok).
    _messages() {
      var self = this, path = "/v1/chat/" + this.chatId + "/messages?limit=100";
      return this._request("GET", path).then(function (response) {
        if (!response.ok) throw response;
        var total = parseInt(response.headers.get("X-Total-Count") || "0", 10);
        if (total <= 100) return response.json();
        return self._request("GET", path + "&offset=" + (total - 100)).then(function (r) { return r.json(); });
      });
    },

    // One stored message in the log, whoever wrote it.
    _show(message) {
      this._ids()[message.id] = 1;
      if (message.role === "user") { this._addUser(message.content); return; }
      if (message.role === "operator") { this._addOperator(message); return; }
      var answer = this._addAssistant(message.content, message.sources);
      answer.id = message.id;
      this._addFeedback(answer, message.feedback);
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
          .then(function (response) {
            if (!response.ok) throw response;
            if (next === "negative") self._offer(answer); // the bot did not help: a person may
          })
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
      var self = this, t = this.t, answer = null, finished = false, wrote = false;
      var controller = this._controller = new AbortController();
      var typing = el("div", "typing");
      typing.appendChild(el("span", "sr", t.typing));
      typing.appendChild(el("i"));
      typing.appendChild(el("i"));
      typing.appendChild(el("i"));
      // While a person handles the chat, the message is stored for them: the bot types nothing.
      if ((this._handling || "bot") === "bot") {
        this._append(typing);
        this._announce(t.typing);
      }
      this._setBusy(true);
      this._sent().push(text);
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
        if (response.status === 202) {
          // A person handles the chat (the JSON form of the stream below): the message waits for them.
          return response.json().then(function (stored) { self._forPerson(stored.message && stored.message.id); });
        }
        if (!response.ok || !response.body) {
          return self._problem(response).then(fail);
        }
        return readEvents(response, function (name, data) {
          if (name === "sources") {
            sources = data.sources || [];
          } else if (name === "delta") {
            wrote = true;
            ensureAnswer().text += data.content || "";
            answer.schedule();
          } else if (name === "done") {
            finished = true;
            if (data.chat_id) { self.chatId = data.chat_id; self._save(); }
            // No sources and no text: stored for a person (`message_id` is the visitor's message).
            if (!wrote && !sources.length) {
              typing.remove();
              self._forPerson(data.message_id);
              return;
            }
            ensureAnswer();
            answer.id = data.message_id;
            self._ids()[answer.id] = 1;
            answer.render();
            self._stick = self._atEnd();
            if (answer.id) self._addFeedback(answer, null);
            self._scrollToEnd(false);
            self._announce(answer.text);
            self._emit("minirag:answer", {
              chatId: self.chatId, messageId: answer.id, content: answer.text, sources: sources
            });
            self._answered(answer, sources);
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
        self._settle(text);
        // A turn that started over as a new chat handed the controls to its successor.
        if (self._controller !== controller) return;
        self._controller = null;
        self._setBusy(false);
      });
    },

    // --- Talking to a person (docs/widget.md, "Talking to a person") ---

    // Ids of the messages in the log (the chat's events repeat the visitor's own), and the texts the
    // visitor sent that the server has not confirmed yet.
    _ids() { return this._seen || (this._seen = {}); },
    _sent() { return this._pending || (this._pending = []); },

    _settle(text) {
      var sent = this._sent(), i = sent.indexOf(text);
      if (i >= 0) sent.splice(i, 1);
    },

    // The bot's hand-off setting: the chat's (current) once there is one, else widget-config's.
    _setting() { return this._handoff || this._cfg.handoff || "off"; },

    // minirag-widget.js calls it whenever the dialog opens.
    _person() {
      this._bar();
      this._follow();
    },

    // New conversation (minirag-widget.js): the next chat starts with the bot.
    _reset() {
      this._unfollow();
      this._handling = "bot";
      this._operator = "";
      this._seen = {};
      this._pending = [];
      this._wantPerson = false;
      this._bar();
    },

    // The line above the input: "Talk to a person", or who answers and "Back to the assistant".
    _bar() {
      var self = this, t = this.t, bar = this._handoffBar, handling = this._handling || "bot";
      if (!bar) {
        bar = this._handoffBar = el("div", "bar");
        bar.setAttribute("part", "handoff");
        this._barText = bar.appendChild(el("span"));
        this._barButton = bar.appendChild(el("button", "link"));
        this._barButton.type = "button";
        this._barButton.addEventListener("click", function () {
          if ((self._handling || "bot") === "bot") self._askPerson(); else self._release();
        });
        this._dialog.insertBefore(bar, this._input.form);
      }
      bar.hidden = handling === "bot" && this._setting() === "off";
      this._barText.textContent = handling === "human" ? t.chatting.replace("{name}", this._operator || t.team)
        : handling === "needs_human" ? t.waiting : "";
      this._barButton.textContent = handling === "bot" ? t.person : t.toBot;
    },

    // A line in the conversation about who answers, announced once.
    _note(text) {
      this._append(el("div", "status", text));
      this._scrollToEnd(true);
      this._announce(text);
    },

    _fail(problem) {
      this._error(problem.code === "handoff_off" ? this.t.noPerson : this._say(problem)[0], false);
      this._report(problem);
    },

    // POST /v1/chat/{id}<path>: resolves to the JSON answer, or rejects with {status, code, detail}.
    _call(path, body) {
      var self = this;
      return this._request("POST", "/v1/chat/" + this.chatId + path, body).then(function (response) {
        if (!response.ok) return self._problem(response).then(function (problem) { throw problem; });
        return response.json();
      }, function (error) {
        throw { status: 0, code: "network", detail: String(error) };
      });
    },

    // Who answers the chat now (GET /v1/chat/{id}).
    _sync() {
      var self = this;
      this._request("GET", "/v1/chat/" + this.chatId)
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (chat) { self._apply(chat); }, function () {});
    },

    _noOffers() {
      Array.prototype.forEach.call(this._log.querySelectorAll(".offer"), function (offer) { offer.remove(); });
    },

    // "Talk to a person" under an answer (a bot whose hand-off is `offered`, still answering itself).
    _offer(answer) {
      var self = this;
      if (answer.offered || this._setting() !== "offered" || (this._handling || "bot") !== "bot") return;
      var button = answer.offered = answer.node.appendChild(el("button", "link offer", this.t.person));
      button.type = "button";
      button.addEventListener("click", function () {
        self._askPerson();
        self._input.focus(); // the button is gone
      });
    },

    // After the bot's answer: ask for the person the visitor wanted before the chat existed, or offer
    // one after a refusal. The `done` event keeps its v1 fields (no `outcome`); a refusal never has
    // sources, so an answer without any is looked up: its stored message says. (A widget that thought
    // a person handles the chat learns that it was handed back.)
    _answered(answer, sources) {
      var self = this, path = "/v1/chat/" + this.chatId + "/messages?limit=1";
      if ((this._handling || "bot") !== "bot") { this._sync(); return; }
      if (this._wantPerson) { this._wantPerson = false; this._askPerson(); return; }
      if (sources.length || this._setting() !== "offered") return;
      this._request("GET", path).then(function (response) {
        if (!response.ok) throw response;
        return self._request("GET", path + "&offset=" + (parseInt(response.headers.get("X-Total-Count"), 10) - 1 || 0));
      }).then(function (response) { return response.ok ? response.json() : []; }).then(function (messages) {
        if (messages[0] && messages[0].id === answer.id && messages[0].outcome === "refused") self._offer(answer);
      }).catch(function () {}); // only an offer: nothing to tell anyone
    },

    // The visitor's message waits for a person (202, or a stream without text). A widget that thought
    // the bot answers learns that someone stepped in, and who.
    _forPerson(id) {
      if (id) this._ids()[id] = 1;
      if ((this._handling || "bot") === "bot") this._sync();
    },

    // "Talk to a person": POST /v1/chat/{id}/handoff. A chat starts with a question, so without one the
    // visitor is asked to write it: the chat it starts (the bot answers it meanwhile) is handed over
    // right after.
    _askPerson() {
      var self = this, t = this.t;
      this._noOffers();
      if (!this.chatId) {
        if (!this._wantPerson) this._note(t.writeFirst);
        this._wantPerson = true;
        this._input.focus();
        return;
      }
      if (this._asking) return;
      this._asking = true;
      this._call("/handoff", {}).then(function (result) {
        self._apply(result.chat, true);
        if (result.available) self._note(t.joining);
        else if (result.ask_for_email) self._emailForm(result.next_available_at);
        else self._note(t.later);
      }, function (problem) {
        if (problem.status === 409) { // the site turned hand-offs off since the widget started
          problem.code = "handoff_off";
          self._handoff = "off";
          self._bar();
        }
        self._fail(problem);
      }).then(function () { self._asking = false; });
    },

    // "Back to the assistant": POST /v1/chat/{id}/release.
    _release() {
      var self = this;
      if (this._releasing) return;
      this._releasing = true;
      this._call("/release").then(function (chat) { self._apply(chat); }, function (problem) { self._fail(problem); })
        .then(function () { self._releasing = false; });
    },

    // Nobody is available: "Leave your email and we'll answer there", and when (next_available_at, the
    // way the visitor writes dates); the address goes with another hand-off call.
    _emailForm(next) {
      var self = this, t = this.t, id = this._dialog.id + "m" + (this._forms = (this._forms || 0) + 1);
      var form = el("form", "card"), label = el("label", null, t.email), row = el("div"), input = el("input");
      var send = el("button", "link", t.send), error = el("p");
      form.noValidate = true; // the server decides what an address is; its 422 is shown at the field
      form.appendChild(el("p", null, next ? t.leaveAt.replace("{time}", this._when(next)) : t.leaveSoon)).id = id + "d";
      form.appendChild(label);
      form.appendChild(row).appendChild(input);
      row.appendChild(send);
      form.appendChild(error);
      input.type = "email";
      input.autocomplete = "email";
      input.required = true;
      input.id = label.htmlFor = id;
      input.setAttribute("aria-describedby", id + "d " + id + "e");
      send.type = "submit";
      error.id = id + "e";
      error.setAttribute("role", "alert");
      function invalid() {
        error.textContent = t.badEmail;
        input.setAttribute("aria-invalid", "true");
        input.focus();
      }
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        var email = input.value.trim();
        if (!email) { invalid(); return; }
        send.disabled = true;
        self._call("/handoff", { email: email }).then(function (result) {
          var text = t.emailSaved.replace("{email}", email);
          self._apply(result.chat, true);
          form.replaceWith(el("div", "status", text));
          self._announce(text);
          self._input.focus();
        }, function (problem) {
          send.disabled = false;
          if (problem.status !== 422) { self._fail(problem); return; }
          invalid();
          self._report(problem);
        });
      });
      this._append(form);
      this._scrollToEnd(true);
      input.focus();
    },

    _when(iso) {
      var date = new Date(iso), lang = this._lang(), own = navigator.language || lang;
      var options = { weekday: "long", day: "numeric", month: "long", hour: "numeric", minute: "2-digit" };
      try {
        return date.toLocaleString(own.slice(0, 2).toLowerCase() === lang ? own : lang, options);
      } catch (e) {
        return date.toLocaleString();
      }
    },

    // A Chat shape (an answer, a `handling` event, GET /v1/chat/{id}): who answers now. `quiet` when
    // restoring, and after asking (what that answer says is the news).
    _apply(chat, quiet) {
      if (!chat || chat.id !== this.chatId) return;
      var t = this.t, before = this._handling || "bot", now = chat.handling || "bot";
      var name = chat.assigned_to_name || "";
      var changed = now !== before || (now === "human" && name !== this._operator);
      if (chat.handoff) this._handoff = chat.handoff;
      this._handling = now;
      this._operator = name;
      this._bar();
      if (now === "bot") {
        this._unfollow();
      } else {
        this._noOffers();
        this._follow();
      }
      if (!changed || quiet) return;
      this._note(now === "human" ? t.chatting.replace("{name}", name || t.team)
        : now === "bot" ? t.backWithBot : t.waiting);
    },

    // The chat's live events while a person is involved: GET /v1/chat/{id}/events read with fetch
    // (EventSource cannot send the token), reconnecting after a drop with a growing pause and
    // `?lastEventId=` (no header: no extra preflight), so that nothing is missed.
    _follow() {
      var self = this, stream = this._stream;
      if (stream || !this.chatId || (this._handling || "bot") === "bot" || !this.isConnected) return;
      stream = this._stream = { chat: this.chatId, last: "", pause: 1000 };
      function again() {
        if (self._stream !== stream) return;
        stream.timer = setTimeout(connect, stream.pause * (0.5 + Math.random() / 2));
        stream.pause = Math.min(stream.pause * 2, 30000);
      }
      function connect() {
        var controller = stream.controller = new AbortController(), resumed = !!stream.last;
        function watch() { // keep-alives come every 20 s: a silent connection is a dead one
          clearTimeout(stream.idle);
          stream.idle = setTimeout(function () { controller.abort(); again(); }, 45000);
        }
        watch();
        var path = "/v1/chat/" + stream.chat + "/events";
        fetch(self.api + path + (resumed ? "?lastEventId=" + encodeURIComponent(stream.last) : ""), {
          headers: { Authorization: "Bearer " + self.token, "X-MiniRAG-Visitor": self.visitorId,
            Accept: "text/event-stream" },
          mode: "cors", credentials: "omit", signal: controller.signal
        }).then(function (response) {
          if (response.status >= 400 && response.status < 500 && response.status !== 429) {
            // Not this visitor's chat any more, or the token was revoked: nothing to come back for.
            self._unfollow();
            return self._problem(response).then(function (problem) { self._report(problem); });
          }
          if (!response.ok || !response.body) throw new Error("HTTP " + response.status);
          return readEvents(response, function (name, data, id) {
            watch();
            if (id && id !== "error") stream.last = id;
            if (name === "stream-open") {
              stream.pause = 1000;
              if (!resumed) self._catchUp(); // what happened before it opened
            } else if (name === "stream-reset") {
              self._catchUp(); // the missed events expired; the stored messages have them
            } else if (name === "message") {
              self._incoming(data);
            } else if (name === "handling" || name === "handoff_requested") {
              self._apply(data);
            } else if (name === "typing" && data.who === "operator") {
              self._typing(data.name);
            }
          });
        }).catch(function () {}).then(function () {
          clearTimeout(stream.idle);
          if (!controller.signal.aborted) again();
        });
      }
      connect();
    },

    _unfollow() {
      var stream = this._stream;
      this._stream = null;
      if (stream) {
        clearTimeout(stream.timer);
        clearTimeout(stream.idle);
        if (stream.controller) stream.controller.abort();
      }
      this._typingOff();
    },

    // Who answers now, and the stored messages newer than the newest one in the log.
    _catchUp() {
      var self = this, chat = this.chatId;
      this._sync();
      this._messages().then(function (messages) {
        var ids = self._ids(), start = 0;
        if (self.chatId !== chat) return;
        messages.forEach(function (message, i) { if (ids[message.id]) start = i + 1; });
        messages.slice(start).forEach(function (message) { self._incoming(message); });
      }).catch(function () {});
    },

    // A message from the chat's events or a catch-up, shown once.
    _incoming(message) {
      var sent = this._sent(), mine = sent.indexOf(message.content);
      if (!message.id || this._ids()[message.id]) return;
      if (message.role === "user" && mine >= 0) {
        // The visitor's own, already in the log (its POST has not answered yet).
        sent.splice(mine, 1);
        this._ids()[message.id] = 1;
        return;
      }
      if (message.role === "assistant" && this._busy) return; // the answer being written is in the log
      this._show(message);
      if (message.role === "operator") {
        this._typingOff();
        this._announce(this._who(message.author_name) + ": " + message.content);
      }
    },

    // A person's message, with their name over it ("Ada · Support"), rendered like an answer.
    _addOperator(message) {
      var who = this._who(message.author_name), node = this._bubble("operator", who);
      node.appendChild(el("div", "who", who)).setAttribute("aria-hidden", "true");
      renderMarkdown(node.appendChild(el("div", "body")), String(message.content || ""), function (n) {
        return document.createTextNode("[" + n + "]");
      });
      this._ids()[message.id] = 1;
      this._append(node);
    },

    _who(name) {
      var team = this.t.team;
      name = String(name || "").trim();
      return name && name !== team ? name + " · " + team : team;
    },

    // "Ada is typing…" at the end of the log, until their message comes or 6 s pass without a signal.
    _typing(name) {
      var self = this, text = this.t.isTyping.replace("{name}", String(name || "").trim() || this.t.team);
      if (!this._opTyping) {
        this._opTyping = this._append(el("div", "status is-typing"));
        this._announce(text);
      }
      this._opTyping.textContent = text;
      clearTimeout(this._opTypingTimer);
      this._opTypingTimer = setTimeout(function () { self._typingOff(); }, 6000);
    },

    _typingOff() {
      clearTimeout(this._opTypingTimer);
      if (this._opTyping) this._opTyping.remove();
      this._opTyping = null;
    },

    // The visitor types while a person handles the chat: POST /typing at most every 3 s, best effort.
    _typed() {
      var now = Date.now();
      if (this._handling !== "human" || !this._input.value.trim() || now - (this._typedAt || 0) < 3000) return;
      this._typedAt = now;
      this._request("POST", "/v1/chat/" + this.chatId + "/typing").catch(function () {});
    }
  };
  Object.keys(methods).forEach(function (name) { Widget.prototype[name] = methods[name]; });

  // UI text in the order of minirag-widget.js's TEXT_KEYS, one "|"-separated line per language.
  return {
    strings: {
      de: "Fragen Sie uns|Chat öffnen|Chat schließen|Neues Gespräch|Senden|Antwort stoppen|Stellen Sie eine Frage…|Ihre Frage|Der Assistent schreibt|Quellen|Relevanz|Hilfreich|Nicht hilfreich|Erneut versuchen|Gestoppt.|Gespräch wird geladen…|Neue Nachrichten|Der Assistent ist nicht erreichbar. Prüfen Sie Ihre Verbindung und versuchen Sie es erneut.|Etwas ist schiefgelaufen. Bitte versuchen Sie es erneut.|Ihre Bewertung konnte nicht gespeichert werden.|Zu viele Nachrichten. Bitte warten Sie {n} Sekunden.|Gespräch|Dieser Chat ist noch nicht eingerichtet.|Sie|Assistent|Quelle|Der Assistent ist gerade nicht verfügbar. Bitte versuchen Sie es später noch einmal.|Dieser Chat ist auf dieser Website nicht verfügbar.|Zu viele Nachrichten. Bitte warten Sie einen Moment.|Bereitgestellt von MiniRAG|Mit einem Menschen sprechen|Zurück zum Assistenten|Warten auf eine Person…|Gleich ist jemand für Sie da.|Sie chatten mit {name}|Sie sind wieder beim Assistenten.|{name} schreibt…|Gerade ist niemand erreichbar. Hinterlassen Sie Ihre E-Mail-Adresse, dann antworten wir dort, sobald wir wieder da sind ({time}).|Gerade ist niemand erreichbar. Hinterlassen Sie Ihre E-Mail-Adresse, dann antworten wir dort, sobald jemand wieder da ist.|Gerade ist niemand erreichbar. Wir antworten, sobald jemand wieder da ist.|Ihre E-Mail-Adresse|Bitte geben Sie eine gültige E-Mail-Adresse ein.|Danke! Wir antworten an {email}.|Schreiben Sie unten Ihre Frage: Eine Person wird sie lesen.|Support|Ein Gespräch mit einer Person ist gerade nicht möglich.",
      fr: "Posez-nous une question|Ouvrir le chat|Fermer le chat|Nouvelle conversation|Envoyer|Arrêter la réponse|Posez une question…|Votre question|L'assistant écrit|Sources|pertinence|Utile|Pas utile|Réessayer|Arrêté.|Chargement de la conversation…|Nouveaux messages|Impossible de joindre l'assistant. Vérifiez votre connexion.|Une erreur est survenue. Veuillez réessayer.|Votre avis n'a pas pu être enregistré.|Trop de messages. Réessayez dans {n} secondes.|Conversation|Ce chat n'est pas encore configuré.|Vous|Assistant|Source|L'assistant n'est pas disponible pour le moment. Veuillez réessayer plus tard.|Ce chat n'est pas disponible sur ce site.|Trop de messages. Veuillez patienter un instant.|Propulsé par MiniRAG|Parler à une personne|Revenir à l'assistant|En attente d'une personne…|Une personne va vous rejoindre sous peu.|Vous discutez avec {name}|Vous êtes de retour avec l'assistant.|{name} écrit…|Personne n'est disponible pour le moment. Laissez votre e-mail et nous vous répondrons dès notre retour ({time}).|Personne n'est disponible pour le moment. Laissez votre e-mail et nous vous répondrons dès que quelqu'un sera de retour.|Personne n'est disponible pour le moment. Nous vous répondrons dès que quelqu'un sera de retour.|Votre e-mail|Veuillez saisir une adresse e-mail valide.|Merci ! Nous vous répondrons à {email}.|Écrivez votre question ci-dessous : une personne la lira.|Support|Parler à une personne n'est pas possible pour le moment."
    }
  };
};
