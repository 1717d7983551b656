// Response profile and curtailment event forms ([data-mode-form]): only the scope input the chosen kind needs is
// shown ([data-scope-for]), and the kW inputs ([data-kw-field]) only for a fixed kW reduction (or, on the event
// form, while the mode is left to the profile). On the event form ([data-event-form]) the preview follows the
// inputs: a change re-posts the form as "preview" (the same view answers only the preview part) and swaps
// [data-preview-region]; the Start button in it starts exactly the inputs that preview was made from.
(function () {
  "use strict";
  const form = document.querySelector("[data-mode-form]");
  if (!form) return;
  const kind = form.querySelector("[name=scope_kind]");
  const mode = form.querySelector("[name=mode]");

  function sync() {
    const k = kind ? kind.value : "";
    form.querySelectorAll("[data-scope-for]").forEach((el) => {
      el.hidden = el.dataset.scopeFor !== k;
    });
    const m = mode ? mode.value : "";
    form.querySelectorAll("[data-kw-field]").forEach((el) => {
      el.hidden = !(m === "kw_reduction" || m === "");
    });
  }
  form.addEventListener("change", sync);
  sync();

  if (!form.matches("[data-event-form]")) return;
  const status = form.querySelector("[data-preview-status]");
  const host = form.querySelector("[data-preview-host]");
  const WAIT_MS = 600;
  let timer = null;
  let seq = 0;

  async function refresh() {
    const mine = ++seq;
    const data = new FormData(form);
    data.set("action", "preview");
    data.delete("preview_of");
    if (status) status.textContent = status.dataset.busy || "…";
    let response;
    try {
      response = await fetch(form.action, {
        method: "POST", body: data, credentials: "same-origin", headers: {"X-Requested-With": "fetch"},
      });
    } catch (e) {
      if (status) status.textContent = "";
      return; // offline: the Preview button still works
    }
    if (mine !== seq || !response.ok) return; // a newer change is on its way, or the server refused the request
    const html = await response.text();
    const doc = new DOMParser().parseFromString(html, "text/html");
    const fresh = doc.querySelector("[data-preview-region]");
    const old = host.querySelector("[data-preview-region]");
    if (fresh && old) old.replaceWith(document.importNode(fresh, true));
    if (status) status.textContent = "";
  }

  function later() {
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, WAIT_MS);
  }
  form.addEventListener("change", (event) => {
    if (!event.target.closest("[data-preview-region]")) later();
  });
  form.addEventListener("submit", () => {
    // The page is being replaced by the answer to the button pressed: no refresh may land after it.
    window.clearTimeout(timer);
    seq++;
  });
  form.addEventListener("input", (event) => {
    if (event.target.matches("input[type=number], input[type=text], textarea")) later();
  });
})();
