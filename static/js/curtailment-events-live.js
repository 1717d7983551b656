// A curtailment event's page, live ([data-live-event][data-live="1"]): every data-poll-seconds the page is
// re-read and its [data-live-region] parts swapped, until the event is over (the fresh page says data-live="0").
// Polling rather than /ws/alerts/: the tick job that confirms, re-curtails and restores sends no WebSocket frame.
// Paused while the tab is hidden; the actions part is kept while the user is typing a reason in it.
(function () {
  "use strict";
  const root = document.querySelector("[data-live-event]");
  if (!root || root.dataset.live !== "1") return;
  const every = Math.max(2, Number(root.dataset.pollSeconds) || 5) * 1000;
  let timer = null;

  async function poll() {
    timer = null;
    if (document.hidden) return;
    let response;
    try {
      response = await fetch(window.location.href, {credentials: "same-origin", headers: {"X-Requested-With": "fetch"}});
    } catch (e) {
      schedule();
      return;
    }
    if (!response.ok) {
      schedule();
      return;
    }
    const doc = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = doc.querySelector("[data-live-event]");
    if (!fresh) return;
    fresh.querySelectorAll("[data-live-region]").forEach((region) => {
      const name = region.dataset.liveRegion;
      const old = root.querySelector(`[data-live-region="${name}"]`);
      if (!old) return;
      if (name === "actions" && old.contains(document.activeElement) && document.activeElement.value) return;
      old.replaceWith(document.importNode(region, true));
    });
    root.dataset.live = fresh.dataset.live;
    if (fresh.dataset.live === "1") schedule();
  }

  function schedule() {
    if (timer === null) timer = window.setTimeout(poll, every);
  }
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && root.dataset.live === "1") schedule();
  });
  schedule();
})();
