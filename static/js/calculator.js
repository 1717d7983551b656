// The calculator's per-miner inputs show the chosen model's nominal figure as their placeholder, so an
// empty field visibly means "the model's own figure" (the server does the same on submit).
(function () {
  "use strict";
  const select = document.querySelector("[data-model-select]");
  if (!select) return;
  const inputs = document.querySelectorAll("[data-nominal-of]");
  function sync() {
    const option = select.options[select.selectedIndex];
    inputs.forEach(function (input) {
      const nominal = option ? option.dataset[input.dataset.nominalOf] : undefined;
      input.placeholder = nominal ? nominal + " (" + input.dataset.nominalLabel + ")" : input.dataset.customLabel;
    });
  }
  select.addEventListener("change", sync);
  sync();
})();
