// Site telemetry dashboard: the server renders the figures once, this keeps them current without a
// reload. It polls the summary API every pollMs (and at once when an alert frame arrives over the
// existing /ws/alerts/ socket: live.js re-emits each one as a "hashinsight:alert" event), rewrites the
// cards ([data-field]), the worst-miner and alert tables and the temperature chart, and redraws the
// 24 h fleet hashrate chart from the site history API every five minutes. Words come translated from
// the page (json_script "telemetry-config"); numbers are formatted in the page's language.
(function () {
  "use strict";
  const configNode = document.getElementById("telemetry-config");
  if (!configNode) return;
  const config = JSON.parse(configNode.textContent);
  const labels = config.labels;
  const lang = document.documentElement.lang || "en";
  const formats = {};
  const HISTORY_EVERY_MS = 5 * 60 * 1000;

  function fmt(value, places) {
    if (value === null || value === undefined || Number.isNaN(value)) return "—";
    if (!formats[places]) {
      formats[places] = new Intl.NumberFormat(lang, {minimumFractionDigits: places, maximumFractionDigits: places});
    }
    return formats[places].format(value);
  }

  function pick(data, path) {
    return path.split(".").reduce((obj, key) => (obj == null ? undefined : obj[key]), data);
  }

  function cell(text, cls) {
    const td = document.createElement("td");
    if (cls) td.className = cls;
    if (text instanceof Node) td.appendChild(text); else td.textContent = text;
    return td;
  }

  function minerLink(id, serial) {
    if (!id) return document.createTextNode("—");
    const a = document.createElement("a");
    a.href = config.minerUrl.replace("/0/", "/" + encodeURIComponent(id) + "/");
    a.textContent = serial;
    return a;
  }

  function emptyRow(colspan) {
    const tr = document.createElement("tr");
    const td = cell(labels.none, "text-secondary");
    td.colSpan = colspan;
    tr.appendChild(td);
    return tr;
  }

  function renderWorst(tbody, rows) {
    const byTemp = tbody.dataset.worst === "worst_by_temperature";
    const fresh = rows.map((w) => {
      const tr = document.createElement("tr");
      tr.appendChild(cell(minerLink(w.miner, w.serial)));
      if (byTemp) {
        tr.appendChild(cell(fmt(w.temp_chip_max_c, 1), "text-end"));
        tr.appendChild(cell(fmt(w.hashrate_ths, 1), "text-end"));
      } else {
        tr.appendChild(cell(fmt(w.hashrate_ths, 1), "text-end"));
        tr.appendChild(cell(fmt(w.hashrate_pct_of_nominal, 1) + "%", "text-end"));
      }
      return tr;
    });
    tbody.replaceChildren(...(fresh.length ? fresh : [emptyRow(3)]));
  }

  // The alert's message in the page's language from its id and parameters (telemetry.alert_messages);
  // the stored English text when the page has no sentence for it or a parameter is missing.
  function localMessage(a) {
    const template = a.msg && labels.messages && labels.messages[a.msg.id];
    if (!template || !a.msg.params) return a.message;
    let missing = false;
    const text = template.replace(/%\((\w+)\)s|%%/g, (match, name) => {
      if (match === "%%") return "%";
      if (!(name in a.msg.params)) missing = true;
      return String(a.msg.params[name]);
    });
    return missing ? a.message : text;
  }

  function renderAlerts(tbody, alerts) {
    const fresh = alerts.map((a) => {
      const tr = document.createElement("tr");
      const badge = document.createElement("span");
      badge.className = "badge severity-" + a.severity;
      badge.textContent = labels.severities[a.severity] || a.severity;
      tr.appendChild(cell(badge));
      tr.appendChild(cell(minerLink(a.miner, a.serial)));
      tr.appendChild(cell(labels.alertTypes[a.alert_type] || a.alert_type));
      tr.appendChild(cell(localMessage(a), "alert-message"));
      return tr;
    });
    tbody.replaceChildren(...(fresh.length ? fresh : [emptyRow(4)]));
  }

  // --- charts -------------------------------------------------------------------------------------
  const histogramNode = document.getElementById("temp-histogram-data");
  const histogramCanvas = document.getElementById("temp-histogram");
  const fleetCanvas = document.getElementById("fleet-hashrate-chart");
  const hasChart = typeof Chart !== "undefined";
  let histogram = null;
  let fleet = null;

  function histogramData(buckets) {
    return {
      labels: buckets.map((b) => b.label),
      datasets: [{label: labels.miners, data: buckets.map((b) => b.miners), backgroundColor: buckets.map((b) => {
        const t = b.from_c === null ? 0 : b.from_c;
        return t >= 90 ? "#dc3545" : t >= 80 ? "#fd7e14" : t >= 70 ? "#ffc107" : "#0d6efd";
      })}],
    };
  }

  if (hasChart && histogramCanvas && histogramNode) {
    histogram = new Chart(histogramCanvas, {
      type: "bar",
      data: histogramData(JSON.parse(histogramNode.textContent)),
      options: {responsive: true, maintainAspectRatio: false, animation: false, plugins: {legend: {display: false}},
        scales: {y: {beginAtZero: true, ticks: {precision: 0}, title: {display: true, text: labels.miners}},
          x: {title: {display: true, text: "°C"}}}},
    });
  }

  function timeLabel(iso) {
    return new Date(iso).toLocaleTimeString(lang, {hour: "2-digit", minute: "2-digit"});
  }

  let historyRetry = null;

  async function loadFleetHistory(attempt) {
    if (!hasChart || !fleetCanvas) return;
    clearTimeout(historyRetry);
    // A failed load is tried again soon (a few times) rather than leaving the chart empty for 5 minutes.
    const retry = () => {
      const next = (attempt || 0) + 1;
      if (next <= 5) historyRetry = setTimeout(() => loadFleetHistory(next), 2000 * next);
    };
    const to = new Date();
    const from = new Date(to.getTime() - 24 * 3600 * 1000);
    const url = config.historyUrl + "?resolution=5m&from=" + encodeURIComponent(from.toISOString()) + "&to=" + encodeURIComponent(to.toISOString());
    let body;
    try {
      const response = await fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}});
      if (!response.ok) throw new Error(String(response.status));
      body = await response.json();
    } catch (e) {
      retry();
      return;
    }
    const empty = document.querySelector("[data-testid=fleet-chart-empty]");
    if (empty) empty.classList.toggle("d-none", body.points.length > 0);
    const data = {
      labels: body.points.map((p) => timeLabel(p.t)),
      datasets: [{label: labels.fleetHashrate, data: body.points.map((p) => p.hashrate_ths), borderColor: "#f7931a",
        backgroundColor: "rgba(247,147,26,.15)", fill: true, pointRadius: 0, tension: 0.2}],
    };
    if (fleet) {
      fleet.data = data;
      fleet.update();
    } else {
      fleet = new Chart(fleetCanvas, {type: "line", data, options: {responsive: true, maintainAspectRatio: false, animation: false,
        interaction: {mode: "index", intersect: false}, plugins: {legend: {display: false}},
        scales: {x: {ticks: {maxTicksLimit: 6, autoSkip: true, maxRotation: 0}}, y: {beginAtZero: true, title: {display: true, text: "TH/s"}}}}});
    }
  }

  // --- summary polling ----------------------------------------------------------------------------
  const errorNode = document.querySelector("[data-testid=load-error]");
  let timer = null;
  let inFlight = false;

  function apply(summary) {
    document.querySelectorAll("[data-field]").forEach((node) => {
      const key = node.dataset.field;
      const value = pick(summary, key);
      if (key === "generated_at") {
        node.setAttribute("datetime", value);
        node.textContent = new Date(value).toISOString().slice(11, 19);
        return;
      }
      node.textContent = fmt(value, Number(node.dataset.places || 0));
    });
    document.querySelectorAll("[data-worst]").forEach((tbody) => renderWorst(tbody, summary[tbody.dataset.worst]));
    const alerts = document.querySelector("[data-recent-alerts]");
    if (alerts) renderAlerts(alerts, summary.recent_alerts);
    if (histogram) {
      histogram.data = histogramData(summary.temperature_histogram);
      histogram.update();
    }
  }

  async function refresh() {
    if (inFlight) return;
    inFlight = true;
    try {
      const response = await fetch(config.summaryUrl, {credentials: "same-origin", headers: {Accept: "application/json"}});
      if (!response.ok) throw new Error(String(response.status));
      apply(await response.json());
      if (errorNode) errorNode.classList.add("d-none");
    } catch (e) {
      if (errorNode) {
        errorNode.textContent = labels.loadFailed;
        errorNode.classList.remove("d-none");
      }
    } finally {
      inFlight = false;
    }
  }

  function schedule() {
    clearInterval(timer);
    timer = setInterval(() => {
      if (!document.hidden) refresh();
    }, config.pollMs);
  }

  document.addEventListener("hashinsight:alert", () => refresh());
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) refresh();
  });
  schedule();
  loadFleetHistory(0);
  setInterval(() => {
    if (!document.hidden) loadFleetHistory(0);
  }, HISTORY_EVERY_MS);
  // Tests (and impatient people) can ask for an update at once.
  window.hashinsightTelemetryRefresh = refresh;
})();
