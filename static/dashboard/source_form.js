/* MiniRAG dashboard, the "add a source" form: a file over the upload limit is refused here, before
   it is sent (the server would refuse it after the upload), and the name suggests itself from the
   file's name. No build step, no dependencies. */
(function () {
  "use strict";

  function messageFor(input) {
    var id = input.id + "-size-error", existing = document.getElementById(id);
    if (existing) return existing;
    var message = document.createElement("p");
    message.id = id;
    message.className = "errornote mr-file-error";
    message.setAttribute("role", "alert");
    message.hidden = true;
    input.insertAdjacentElement("afterend", message);
    input.setAttribute("aria-describedby", ((input.getAttribute("aria-describedby") || "") + " " + id).trim());
    return message;
  }

  function check(input) {
    var limit = Number(input.getAttribute("data-max-bytes")), file = input.files && input.files[0];
    var tooLarge = Boolean(file && limit && file.size > limit), message = messageFor(input);
    message.textContent = tooLarge ? input.getAttribute("data-too-large") : "";
    message.hidden = !tooLarge;
    input.setCustomValidity(tooLarge ? message.textContent : "");
    return !tooLarge;
  }

  function suggestName(input) {
    var name = input.form && input.form.elements.namedItem("name"), file = input.files && input.files[0];
    if (!name || !file || (name.value && name.getAttribute("data-suggested") !== name.value)) return;
    name.value = file.name.replace(/\.[^.]+$/, "").replace(/[_-]+/g, " ").trim();
    name.setAttribute("data-suggested", name.value);
  }

  document.addEventListener("change", function (event) {
    var input = event.target;
    if (!input.matches || !input.matches("input[type=file][data-max-bytes]")) return;
    if (check(input)) suggestName(input);
  });

  document.addEventListener("submit", function (event) {
    var inputs = event.target.querySelectorAll("input[type=file][data-max-bytes]");
    for (var i = 0; i < inputs.length; i++) {
      if (!check(inputs[i])) {
        event.preventDefault();
        inputs[i].focus();
        return;
      }
    }
  }, true);
})();
