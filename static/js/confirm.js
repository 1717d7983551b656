// Forms that do something irreversible ask first: <form data-confirm="Revoke …?">.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    const form = event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
  });
})();
