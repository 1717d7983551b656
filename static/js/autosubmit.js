// A <select data-autosubmit> submits its form when changed (the language picker in the navbar).
// Behaviour lives here rather than in an onchange= attribute, which the Content-Security-Policy forbids.
(function () {
  "use strict";
  document.addEventListener("change", function (event) {
    const select = event.target.closest("select[data-autosubmit]");
    if (select && select.form) select.form.submit();
  });
})();
