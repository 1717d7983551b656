// Commands pages, live: the list's rows and a command's page follow the "command" frames of /ws/alerts/
// (commands.handlers sends them to the site's group and the ALL group; the consumer passes them only to users
// whose role reads CURTAILMENT and whose scope holds the site).
// List ([data-live-commands]): each changed command's row is fetched from the server (data-row-url, with the
// page's filters in data-query), rendered by the page's own template; 204 (no longer matches the filters) or
// 404 (no longer visible) removes it; new commands go on top of the first page. A burst re-reads the table body.
// Detail ([data-live-commands-detail]): a frame for this command re-reads the page and swaps its
// [data-live-region] parts; the actions part is kept while the user is typing a reason there.
// Command frames are not replayed on reconnect: after a reconnect the page re-reads what it shows.
// Also on the detail page: the targets table filters (a search box) and sorts (header buttons) in place.
(function () {
  "use strict";
  const table = document.querySelector("[data-live-commands]");
  const detail = document.querySelector("[data-live-commands-detail]");

  // -- targets table: filter and sort (delegated: the table is swapped by live updates) ---------------------
  function applyTargetFilter() {
    const box = document.querySelector("[data-target-filter]");
    const targets = document.querySelector("[data-sortable-table]");
    if (!box || !targets) return;
    const needle = box.value.trim().toLowerCase();
    [...targets.tBodies[0].rows].forEach((row) => {
      row.hidden = needle !== "" && !row.textContent.toLowerCase().includes(needle);
    });
  }
  document.addEventListener("input", (event) => {
    if (event.target.matches("[data-target-filter]")) applyTargetFilter();
  });
  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-sort-col]");
    if (!button) return;
    const targets = button.closest("table");
    const col = Number(button.dataset.sortCol);
    const desc = button.dataset.dir === "asc";
    button.dataset.dir = desc ? "desc" : "asc";
    const body = targets.tBodies[0];
    const rows = [...body.rows];
    rows.sort((a, b) => {
      const x = a.cells[col].textContent.trim();
      const y = b.cells[col].textContent.trim();
      return (desc ? -1 : 1) * x.localeCompare(y, undefined, {numeric: true});
    });
    rows.forEach((row) => body.appendChild(row));
  });

  if (!table && !detail) return;

  // -- list rows --------------------------------------------------------------------------------------------
  const BURST = 10;
  const GATHER_MS = 250;
  const pending = new Set();
  let gatherTimer = null;
  let running = Promise.resolve();

  async function fetchText(url) {
    try {
      const response = await fetch(url, {credentials: "same-origin", headers: {"X-Requested-With": "fetch"}});
      return response;
    } catch (e) {
      return null; // network trouble: the next frame or a reload brings the page up to date
    }
  }

  async function refreshRow(commandId) {
    const tbody = table.tBodies[0];
    const current = tbody.querySelector(`tr[data-command-id="${commandId}"]`);
    const base = table.dataset.rowUrl.replace("/0/", `/${encodeURIComponent(commandId)}/`);
    const query = table.dataset.query;
    const response = await fetchText(query ? `${base}?${query}` : base);
    if (!response) return;
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
      current.replaceWith(row);
    } else if (table.dataset.firstPage) {
      tbody.prepend(row);
      const empty = tbody.querySelector("[data-empty]");
      if (empty) empty.remove();
    }
  }

  async function refreshBody() {
    const response = await fetchText(location.href);
    if (!response || !response.ok) return;
    const doc = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = doc.querySelector("[data-live-commands] tbody");
    if (fresh) table.tBodies[0].replaceWith(document.importNode(fresh, true));
    const count = doc.querySelector("[data-testid=awaiting-count]");
    const mine = document.querySelector("[data-testid=awaiting-count]");
    if (count && mine) mine.replaceWith(document.importNode(count, true));
  }

  // -- detail regions ---------------------------------------------------------------------------------------
  function typing(region) {
    if (region.contains(document.activeElement) && document.activeElement.matches("input, textarea")) return true;
    return [...region.querySelectorAll("input[name=reason]")].some((input) => input.value.trim() !== "");
  }

  async function refreshDetail() {
    const response = await fetchText(location.pathname);
    if (!response || !response.ok) return;
    const doc = new DOMParser().parseFromString(await response.text(), "text/html");
    const filter = document.querySelector("[data-target-filter]");
    const needle = filter ? filter.value : "";
    doc.querySelectorAll("[data-live-region]").forEach((fresh) => {
      const current = detail.querySelector(`[data-live-region="${fresh.dataset.liveRegion}"]`);
      if (!current) return;
      if (fresh.dataset.liveRegion === "actions" && typing(current)) return;
      current.replaceWith(document.importNode(fresh, true));
    });
    const box = document.querySelector("[data-target-filter]");
    if (box && needle) {
      box.value = needle;
      applyTargetFilter();
    }
  }

  async function flush() {
    const ids = [...pending];
    pending.clear();
    if (detail) {
      await refreshDetail();
      return;
    }
    if (ids.length > BURST) await refreshBody();
    else await Promise.all(ids.map(refreshRow));
  }

  function schedule(commandId) {
    pending.add(String(commandId));
    if (gatherTimer) return;
    gatherTimer = setTimeout(() => {
      gatherTimer = null;
      running = running.then(flush, flush); // one flush at a time, so updates apply in order
    }, GATHER_MS);
  }

  function onFrame(frame) {
    const command = frame.command || {};
    if (detail) {
      if (String(command.command_id) === detail.dataset.commandId) schedule(command.command_id);
      return;
    }
    schedule(command.command_id);
  }

  // -- the socket -------------------------------------------------------------------------------------------
  const seen = new Set();
  let attempt = 0;
  let opened = 0;
  let socket = null;
  let lastMessage = 0;

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}/ws/alerts/`);
    socket.onopen = () => {
      attempt = 0;
      lastMessage = Date.now();
      opened += 1;
      document.documentElement.dataset.commandsLive = "1";
      if (opened > 1) {
        // Frames sent while the connection was down are not replayed: re-read what the page shows.
        running = running.then(detail ? refreshDetail : refreshBody);
      }
    };
    socket.onmessage = (msg) => {
      lastMessage = Date.now();
      let data;
      try { data = JSON.parse(msg.data); } catch (e) { return; }
      if (data.type !== "command" || seen.has(data.id)) return;
      seen.add(data.id);
      onFrame(data);
      document.dispatchEvent(new CustomEvent("hashinsight:command", {detail: data}));
    };
    socket.onclose = (event) => {
      document.documentElement.dataset.commandsLive = "0";
      if (event.code === 4401 || event.code === 4403) return; // signed out or revoked: reconnecting cannot help
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
