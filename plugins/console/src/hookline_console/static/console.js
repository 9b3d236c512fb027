// Hookline console: the little the pages need beyond htmx. Loaded as a file (the
// Content-Security-Policy allows no inline script); everything works without it but copying.
(function () {
  "use strict";

  function copy(button) {
    var text = button.getAttribute("data-copy");
    var done = function () {
      var label = button.textContent;
      button.textContent = "Copied";
      button.setAttribute("data-copied", "true");
      setTimeout(function () { button.textContent = label; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { select(button); });
    } else {
      select(button);
    }
  }

  // Without the clipboard API (plain HTTP on another host): select the text to copy by hand.
  function select(button) {
    var code = button.previousElementSibling;
    if (!code) { return; }
    var range = document.createRange();
    range.selectNodeContents(code);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    button.textContent = "Press Ctrl+C";
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-deadline]").forEach(function (el) {
      var left = Math.max(0, Math.round((Date.parse(el.getAttribute("data-deadline")) - now) / 1000));
      el.textContent = Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0");
    });
  }

  // A problem's "line N" link puts the editor's caret on that line.
  function gotoLine(link) {
    var area = document.getElementById("definition");
    if (!area) { return; }
    var line = parseInt(link.getAttribute("data-line"), 10) || 1;
    var column = parseInt(link.getAttribute("data-column"), 10) || 1;
    var lines = area.value.split("\n");
    var offset = 0;
    for (var i = 0; i < line - 1 && i < lines.length; i++) { offset += lines[i].length + 1; }
    offset += column - 1;
    area.focus();
    area.setSelectionRange(offset, offset);
    area.scrollTop = Math.max(0, (line - 3) * parseFloat(getComputedStyle(area).lineHeight || "18"));
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button.copy");
    if (button) { event.preventDefault(); copy(button); return; }
    var link = event.target.closest("a.goto");
    if (link) { event.preventDefault(); gotoLine(link); }
  });
  setInterval(tick, 1000);
  document.addEventListener("DOMContentLoaded", tick);
  document.addEventListener("htmx:afterSwap", tick);
})();
