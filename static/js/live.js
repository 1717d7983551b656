// Live alerts: one WebSocket per tab to /ws/alerts/, reconnecting with exponential backoff and
// jitter; a navbar indicator shows the connection and new alerts raise a toast.
// An alert table on the page ([data-live-alerts]) is kept current without a reload: for each event the
// row is fetched from the server (data-row-url, with the page's filters in data-query), rendered by
// the same template as the page, so live and server-rendered rows are identical. 204 (no longer
// matches the filters) or 404 (no longer visible) removes the row.
// Resume: the id of the last event seen is kept per tab (sessionStorage) and sent as ?after= when
// reconnecting, so the server replays what was missed while the connection was down.
(function () {
  "use strict";
  const indicator = document.getElementById("live-status");
  const toasts = document.getElementById("toasts");
  const table = document.querySelector("[data-live-alerts]");
  if (!indicator) return;
  const labels = JSON.parse(indicator.dataset.labels);
  const LAST_EVENT_KEY = "hashinsight.alerts.lastEventId";
  const seen = new Set();
  let attempt = 0;
  let socket = null;
  let lastMessage = 0;

  function setState(state) {
    indicator.dataset.state = state;
    indicator.textContent = labels[state];
    indicator.className = "badge me-3 " + ({live: "text-bg-success", connecting: "text-bg-warning", offline: "text-bg-danger"}[state]);
  }

  function lastEventId() {
    try { return sessionStorage.getItem(LAST_EVENT_KEY); } catch (e) { return null; }
  }

  function rememberEvent(id) {
    try { sessionStorage.setItem(LAST_EVENT_KEY, id); } catch (e) { /* storage disabled: no resume */ }
  }

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  }

  function toast(alert) {
    if (!toasts || !window.bootstrap) return;
    const box = el("div", undefined, "toast align-items-center border-0 text-bg-" + ({critical: "danger", warning: "warning", info: "info"}[alert.severity] || "secondary"));
    box.setAttribute("role", "alert");
    box.dataset.testid = "alert-toast";
    const body = el("div", undefined, "d-flex");
    body.appendChild(el("div", `${alert.alert_type}: ${alert.message}` + (alert.status === "resolved" ? " ✓" : ""), "toast-body"));
    box.appendChild(body);
    toasts.appendChild(box);
    new window.bootstrap.Toast(box, {delay: 8000}).show();
    box.addEventListener("hidden.bs.toast", () => box.remove());
  }

  // Updates are gathered for a moment: repeats of one alert cost one fetch, and a burst (more than
  // BURST alerts at once) re-reads the table body of this very page in one request instead of one
  // request per alert, so a storm of alerts cannot turn every open page into a request storm.
  const BURST = 10;
  const GATHER_MS = 250;
  const pending = new Set();
  let gatherTimer = null;
  let running = Promise.resolve();

  function keepSelection(from, to) {
    const ticked = new Set([...from.querySelectorAll("input[name=ids]:checked")].map((box) => box.value));
    to.querySelectorAll("input[name=ids]").forEach((box) => { box.checked = ticked.has(box.value); });
  }

  async function refreshRow(alertId) {
    const tbody = table.tBodies[0];
    const current = tbody.querySelector(`tr[data-alert-id="${alertId}"]`);
    const base = table.dataset.rowUrl.replace("/0/", `/${encodeURIComponent(alertId)}/`);
    const query = table.dataset.query;
    let response;
    try {
      response = await fetch(query ? `${base}?${query}` : base, {credentials: "same-origin", headers: {"X-Requested-With": "fetch"}});
    } catch (e) {
      return; // network trouble: the next event or a reload brings the row up to date
    }
    if (response.status === 204 || response.status === 404) {
      if (current) current.remove();
      return;
    }
    if (!response.ok) return;
    const template = document.createElement("template");
    template.innerHTML = (await response.text()).trim();
    const row = template.content.querySelector("tr");
    if (!row) return;
    if (current) {
      keepSelection(current, row);
      current.replaceWith(row);
    } else if (table.dataset.firstPage) {
      // New alerts belong at the top of the first page; other pages show them when visited.
      tbody.prepend(row);
      const empty = tbody.querySelector("[data-empty]");
      if (empty) empty.remove();
    }
  }

  async function refreshBody() {
    let response;
    try {
      response = await fetch(location.href, {credentials: "same-origin", headers: {"X-Requested-With": "fetch"}});
    } catch (e) {
      return;
    }
    if (!response.ok) return;
    const doc = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = doc.querySelector("[data-live-alerts] tbody");
    if (!fresh) return;
    const body = document.importNode(fresh, true);
    keepSelection(table.tBodies[0], body);
    table.tBodies[0].replaceWith(body);
  }

  async function flush() {
    const ids = [...pending];
    pending.clear();
    if (ids.length > BURST) await refreshBody();
    else await Promise.all(ids.map(refreshRow));
  }

  function updateRow(alertId) {
    if (!table || !table.dataset.rowUrl) return;
    pending.add(String(alertId));
    if (gatherTimer) return;
    gatherTimer = setTimeout(() => {
      gatherTimer = null;
      running = running.then(flush, flush); // one flush at a time, so updates apply in order
    }, GATHER_MS);
  }

  function socketUrl() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const after = lastEventId();
    return `${scheme}://${location.host}/ws/alerts/` + (after ? `?after=${encodeURIComponent(after)}` : "");
  }

  function connect() {
    setState("connecting");
    socket = new WebSocket(socketUrl());
    socket.onopen = () => { attempt = 0; lastMessage = Date.now(); setState("live"); };
    socket.onmessage = (msg) => {
      lastMessage = Date.now();
      const data = JSON.parse(msg.data);
      if (data.type !== "alert" || seen.has(data.id)) return;
      seen.add(data.id);
      rememberEvent(data.id);
      updateRow(data.alert.alert_id);
      toast(data.alert);
      document.dispatchEvent(new CustomEvent("hashinsight:alert", {detail: data}));
    };
    socket.onclose = (event) => {
      setState("offline");
      // 4401: signed out; 4403: the user was disabled or the token revoked. Reconnecting cannot help.
      if (event.code === 4401 || event.code === 4403) return;
      const delay = Math.min(30000, 1000 * 2 ** attempt) * (0.5 + Math.random());
      attempt += 1;
      setTimeout(connect, delay);
    };
  }

  // The server sends a heartbeat every 30 s; silence for 75 s means a dead connection.
  setInterval(() => {
    if (socket && socket.readyState === WebSocket.OPEN && Date.now() - lastMessage > 75000) socket.close();
  }, 15000);
  connect();
})();
