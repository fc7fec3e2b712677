(function () {
  "use strict";
  // Adds a copy button to each reproduction command; the <pre> stays selectable without it.
  Array.prototype.forEach.call(document.querySelectorAll("pre.repro"), function (pre) {
    var btn = document.createElement("button");
    btn.type = "button";
    btn.className = "copy-btn";
    btn.textContent = "Copy command";
    function selectText() {
      var range = document.createRange();
      range.selectNodeContents(pre);
      var sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      var copied = false;
      try { copied = document.execCommand("copy"); } catch (e) { copied = false; }
      btn.textContent = copied ? "Copied" : "Selected \u2014 press Ctrl+C";
    }
    btn.addEventListener("click", function () {
      var text = pre.textContent;
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(text).then(function () { btn.textContent = "Copied"; }, selectText);
      } else {
        selectText();
      }
    });
    var heading = pre.previousElementSibling;
    if (heading && /^H\d$/.test(heading.tagName)) { heading.appendChild(btn); } else { pre.parentNode.insertBefore(btn, pre); }
  });
}());
