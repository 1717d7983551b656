// Reports pages: the request and schedule forms show only the inputs the chosen report needs; rows of jobs still
// queued or running ([data-poll-url]) are re-read every 2 s and replaced until they are done or failed; progress bars
// take their width from data-progress (the CSP allows no inline style). Paused while the tab is hidden.
(function () {
  "use strict";
  const EVERY_MS = 2000;
  const NEEDS = {
    site_monthly: ["site", "month"],
    client_statement: ["invoice", "customer"],
  };
  const SUBJECT_FIELDS = ["site", "month", "invoice", "customer"];

  function widths(root) {
    root.querySelectorAll(".progress-bar[data-progress]").forEach((bar) => {
      bar.style.width = Math.max(0, Math.min(100, Number(bar.dataset.progress) || 0)) + "%";
    });
  }

  function showFields(form) {
    const kind = form.querySelector("select[name=kind]");
    if (!kind) return;
    const wanted = NEEDS[kind.value] || [];
    SUBJECT_FIELDS.forEach((name) => {
      const box = form.querySelector(`[data-field="${name}"]`);
      if (box) box.hidden = !wanted.includes(name);
    });
  }

  document.querySelectorAll("form[data-report-form]").forEach((form) => {
    showFields(form);
    const kind = form.querySelector("select[name=kind]");
    if (kind) kind.addEventListener("change", () => showFields(form));
  });
  widths(document);

  let timer = null;
  async function poll() {
    timer = null;
    if (document.hidden) return;
    const rows = Array.from(document.querySelectorAll("tr[data-poll-url]"));
    for (const row of rows) {
      try {
        const response = await fetch(row.dataset.pollUrl, {credentials: "same-origin", headers: {"X-Requested-With": "fetch"}});
        if (!response.ok) continue;
        const doc = new DOMParser().parseFromString(`<table><tbody>${await response.text()}</tbody></table>`, "text/html");
        const fresh = doc.querySelector("tr[data-job-id]");
        if (fresh) {
          const node = document.importNode(fresh, true);
          row.replaceWith(node);
          widths(node);
        }
      } catch (e) {
        // the network blinked: the next round tries again
      }
    }
    schedule();
  }
  function schedule() {
    if (timer === null && document.querySelector("tr[data-poll-url]")) timer = window.setTimeout(poll, EVERY_MS);
  }
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) schedule();
  });
  schedule();
})();
