// Miner detail charts: hashrate against nominal, chip/inlet/outlet temperatures, power and fan speed
// for 24 h, 7 days or 90 days. A range button fetches the miner's history API (resolution "auto": the
// server picks raw samples, 5-minute windows or daily rows) and redraws the charts in place, without
// reloading the page. Words come translated from the page (json_script "miner-charts-config").
(function () {
  "use strict";
  const configNode = document.getElementById("miner-charts-config");
  if (!configNode || typeof Chart === "undefined") return;
  const config = JSON.parse(configNode.textContent);
  const labels = config.labels;
  const lang = document.documentElement.lang || "en";
  const RANGES_H = {"24h": 24, "7d": 24 * 7, "90d": 24 * 90};
  const buttons = document.querySelectorAll("[data-range]");
  const layerNode = document.querySelector("[data-testid=chart-layer]");
  const emptyNode = document.querySelector("[data-testid=chart-empty]");
  const charts = {};
  let shortLabels = []; // axis ticks; the tooltips keep the full time
  let request = 0;

  function line(label, color, extra) {
    return Object.assign({label, data: [], borderColor: color, backgroundColor: color, pointRadius: 0, borderWidth: 2,
      tension: 0.2, spanGaps: true}, extra || {});
  }

  function makeChart(id, datasets, unit, fromZero) {
    const canvas = document.getElementById(id);
    if (!canvas) return null;
    return new Chart(canvas, {
      type: "line",
      data: {labels: [], datasets},
      options: {responsive: true, maintainAspectRatio: false, animation: false,
        interaction: {mode: "index", intersect: false},
        plugins: {legend: {display: datasets.length > 1, labels: {boxWidth: 12}}},
        scales: {x: {ticks: {maxTicksLimit: 7, autoSkip: true, maxRotation: 0,
          callback: (value, index) => shortLabels[index] ?? ""}}, y: {beginAtZero: Boolean(fromZero), title: {display: true, text: unit}}}},
    });
  }

  charts.hashrate = makeChart("chart-hashrate", [
    line(labels.hashrate, "#f7931a"),
    line(labels.nominal, "#6c757d", {borderDash: [6, 4], borderWidth: 1}),
  ], "TH/s", true);
  charts.temps = makeChart("chart-temps", [
    line(labels.chip, "#dc3545"), line(labels.inlet, "#0d6efd"), line(labels.outlet, "#6f42c1"),
  ], "°C");
  charts.power = makeChart("chart-power", [line(labels.power, "#198754")], "W");
  charts.fan = makeChart("chart-fan", [line(labels.fan, "#20c997")], "rpm");

  function timeLabel(iso, hours) {
    const d = new Date(iso);
    if (hours <= 24) return d.toLocaleTimeString(lang, {hour: "2-digit", minute: "2-digit"});
    return d.toLocaleString(lang, {month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit"});
  }

  function tickLabel(iso, hours) {
    const d = new Date(iso);
    if (hours <= 24) return d.toLocaleTimeString(lang, {hour: "2-digit", minute: "2-digit"});
    return d.toLocaleDateString(lang, {month: "numeric", day: "numeric"});
  }

  function set(chart, xLabels, series) {
    if (!chart) return;
    chart.data.labels = xLabels;
    series.forEach((values, i) => { chart.data.datasets[i].data = values; });
    chart.update();
  }

  async function load(range) {
    const hours = RANGES_H[range] || 24;
    const mine = ++request;
    const to = new Date();
    const from = new Date(to.getTime() - hours * 3600 * 1000);
    const url = config.historyUrl + "?resolution=auto&from=" + encodeURIComponent(from.toISOString()) + "&to=" + encodeURIComponent(to.toISOString());
    let body;
    try {
      const response = await fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}});
      if (!response.ok) throw Object.assign(new Error(String(response.status)), {status: response.status});
      body = await response.json();
    } catch (e) {
      if (mine !== request) return;
      if (layerNode) layerNode.textContent = labels.loadFailed;
      // A network or server error is tried again (unless another range was chosen); a refusal is not.
      if (!(e.status >= 400 && e.status < 500)) setTimeout(() => { if (mine === request) load(range); }, 3000);
      return;
    }
    if (mine !== request) return; // a later click won
    const points = body.points;
    const x = points.map((p) => timeLabel(p.t, hours));
    shortLabels = points.map((p) => tickLabel(p.t, hours));
    set(charts.hashrate, x, [points.map((p) => p.hashrate_ths), points.map(() => config.nominalThs)]);
    set(charts.temps, x, [points.map((p) => p.temp_chip_max_c), points.map((p) => p.temp_inlet_c), points.map((p) => p.temp_outlet_c)]);
    set(charts.power, x, [points.map((p) => p.power_w)]);
    set(charts.fan, x, [points.map((p) => p.fan_rpm)]);
    if (layerNode) {
      layerNode.dataset.layer = body.layer;
      layerNode.dataset.points = String(points.length);
      layerNode.textContent = (labels.layers[body.layer] || body.layer) + " · " + labels.everySeconds.replace("%(seconds)s", new Intl.NumberFormat(lang).format(body.step_s));
    }
    if (emptyNode) emptyNode.classList.toggle("d-none", points.length > 0);
  }

  buttons.forEach((button) => {
    button.addEventListener("click", () => {
      buttons.forEach((b) => {
        const active = b === button;
        b.classList.toggle("active", active);
        b.setAttribute("aria-pressed", active ? "true" : "false");
      });
      load(button.dataset.range);
    });
  });
  load("24h");
})();
