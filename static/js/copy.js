// Copy buttons: <button data-copy-target="#input-id" data-copied-label="…" data-failed-label="…">.
// The Clipboard API needs a secure context (https or localhost); on plain http (a LAN install) the
// fallback selects the text and asks the browser to copy it, and if even that fails the text stays
// selected so the user can press Ctrl+C.
(function () {
  "use strict";

  function selectText(input) {
    input.focus();
    input.select();
    input.setSelectionRange(0, input.value.length);
  }

  function legacyCopy(input) {
    selectText(input);
    try {
      return document.execCommand("copy");
    } catch (err) {
      return false;
    }
  }

  async function copy(input) {
    if (navigator.clipboard && window.isSecureContext) {
      try {
        await navigator.clipboard.writeText(input.value);
        return true;
      } catch (err) {
        // Permission refused: fall through to the selection.
      }
    }
    return legacyCopy(input);
  }

  function announce(button, text) {
    if (!button.dataset.label) button.dataset.label = button.textContent;
    button.textContent = text;
    window.clearTimeout(button._copyTimer);
    button._copyTimer = window.setTimeout(function () {
      button.textContent = button.dataset.label;
    }, 2500);
  }

  document.addEventListener("click", async function (event) {
    const button = event.target.closest("[data-copy-target]");
    if (!button) return;
    const input = document.querySelector(button.dataset.copyTarget);
    if (!input) return;
    const copied = await copy(input);
    if (!copied) selectText(input);
    announce(button, copied ? button.dataset.copiedLabel : button.dataset.failedLabel);
    button.dataset.copied = copied ? "yes" : "no";
  });
})();
