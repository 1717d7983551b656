// List tables: a header checkbox ([data-select-all="<name>"]) ticks every row checkbox of that name in
// its table, including rows that arrive live later (the query runs at click time).
(function () {
  "use strict";
  document.addEventListener("change", (event) => {
    const box = event.target.closest("[data-select-all]");
    if (!box) return;
    const table = box.closest("table");
    table.querySelectorAll(`input[type=checkbox][name="${box.dataset.selectAll}"]`).forEach((input) => {
      input.checked = box.checked;
    });
  });
})();
