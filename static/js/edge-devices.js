// Site page, "Edge devices": rotate and revoke ask first (<form data-edge-confirm="…">).
// Its own attribute, so it never doubles up with js/confirm.js on a page that loads both.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    const form = event.target.closest("form[data-edge-confirm]");
    if (form && !window.confirm(form.dataset.edgeConfirm)) event.preventDefault();
  });
})();
