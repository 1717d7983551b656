// Live alerts: one WebSocket per tab to /ws/alerts/, reconnecting with exponential backoff and
// jitter; a navbar indicator shows the connection, new alerts raise a toast and update any alert
// table on the page (rows keyed by alert id, so a redelivered event just rewrites its row).
(function () {
  "use strict";
  const indicator = document.getElementById("live-status");
  const toasts = document.getElementById("toasts");
  const table = document.querySelector("[data-live-alerts]");
  if (!indicator) return;
  const labels = JSON.parse(indicator.dataset.labels);
  const seen = new Set();
  let attempt = 0;
  let socket = null;
  let lastMessage = 0;

  function setState(state) {
    indicator.dataset.state = state;
    indicator.textContent = labels[state];
    indicator.className = "badge me-3 " + ({live: "text-bg-success", connecting: "text-bg-warning", offline: "text-bg-danger"}[state]);
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

  function upsertRow(alert) {
    if (!table) return;
    const tbody = table.tBodies[0];
    let row = tbody.querySelector(`tr[data-alert-id="${alert.alert_id}"]`);
    if (!row) {
      row = document.createElement("tr");
      row.dataset.alertId = alert.alert_id;
      row.dataset.testid = "alert-row";
      tbody.prepend(row);
      const empty = tbody.querySelector("[data-empty]");
      if (empty) empty.remove();
    }
    row.replaceChildren(
      el("td", new Date().toLocaleString()), el("td", alert.severity), el("td", alert.status),
      el("td", alert.alert_type), el("td", String(alert.site_id)), el("td", String(alert.count)), el("td", alert.message),
    );
  }

  function connect() {
    setState("connecting");
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}/ws/alerts/`);
    socket.onopen = () => { attempt = 0; lastMessage = Date.now(); setState("live"); };
    socket.onmessage = (msg) => {
      lastMessage = Date.now();
      const data = JSON.parse(msg.data);
      if (data.type !== "alert" || seen.has(data.id)) return;
      seen.add(data.id);
      upsertRow(data.alert);
      toast(data.alert);
      document.dispatchEvent(new CustomEvent("hashinsight:alert", {detail: data}));
    };
    socket.onclose = (event) => {
      setState("offline");
      if (event.code === 4401) return; // signed out: do not hammer the server
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
