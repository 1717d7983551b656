// The token form shows its date field only when "On a date" is the chosen expiry (without scripts the
// field simply stays visible).
(function () {
  "use strict";
  const select = document.querySelector("[data-expiry-select]");
  const dateField = document.querySelector("[data-expiry-date]");
  if (!select || !dateField) return;
  function sync() {
    dateField.classList.toggle("d-none", select.value !== "date");
  }
  select.addEventListener("change", sync);
  sync();
})();
