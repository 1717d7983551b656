// The forecasts page's chart: the observed history, the forecast line and its 80 % and 95 % bands (Chart.js
// "fill" between a band's lower and upper line). Data and translated words come from the page
// (json_script "forecast-chart-config"); no inline script (Content-Security-Policy).
(function () {
  "use strict";
  const node = document.getElementById("forecast-chart-config");
  const canvas = document.getElementById("forecast-chart");
  if (!node || !canvas || typeof Chart === "undefined") return;
  const config = JSON.parse(node.textContent);
  const labels = config.labels;
  const lang = document.documentElement.lang || "en";
  const history = config.history || [];
  const points = config.points || [];
  const dates = history.map((p) => p.date).concat(points.map((p) => p.date));
  const pad = (n) => new Array(n).fill(null);
  // The forecast lines start at the last observed value, so the chart has no gap at the origin.
  const last = history.length ? history[history.length - 1].value : null;
  const lead = pad(Math.max(history.length - 1, 0));
  const series = (key) => lead.concat(history.length ? [last] : [], points.map((p) => p[key]));
  const observed = history.map((p) => p.value).concat(pad(points.length));
  const orange = "#f7931a";
  const narrow = canvas.clientWidth < 500;

  function band(label, key, fillTo, alpha) {
    return {label, data: series(key), borderWidth: 0, pointRadius: 0, fill: fillTo,
      backgroundColor: `rgba(247, 147, 26, ${alpha})`, borderColor: "transparent", tension: 0.1};
  }

  const datasets = [
    {label: labels.history, data: observed, borderColor: "#0d6efd", backgroundColor: "#0d6efd", pointRadius: 0,
      borderWidth: 2, tension: 0.1},
    {label: labels.forecast, data: series("yhat"), borderColor: orange, backgroundColor: orange, pointRadius: 0,
      borderWidth: 2, borderDash: [6, 3], tension: 0.1},
    band(labels.band95, "hi95", false, 0),
    band(labels.band95, "lo95", "-1", 0.15),
    band(labels.band80, "hi80", false, 0),
    band(labels.band80, "lo80", "-1", 0.3),
  ];
  const fmt = new Intl.NumberFormat(lang, {maximumSignificantDigits: 6});
  new Chart(canvas, {
    type: "line",
    data: {labels: dates, datasets},
    options: {
      responsive: true, maintainAspectRatio: false, animation: false, spanGaps: false,
      interaction: {mode: "index", intersect: false},
      plugins: {
        legend: {labels: {boxWidth: 12, filter: (item) => item.datasetIndex !== 2 && item.datasetIndex !== 4}},
        tooltip: {callbacks: {label: (ctx) => ctx.raw === null ? null : `${ctx.dataset.label}: ${fmt.format(ctx.raw)}`}},
      },
      scales: {
        // Phones: fewer ticks, month-day only (full dates collide at 390 px); tooltips keep the full date.
        x: {ticks: {maxTicksLimit: narrow ? 4 : 8, autoSkip: true, maxRotation: 0,
          callback: (value, index) => narrow ? dates[index].slice(5) : dates[index]}},
        y: {title: {display: Boolean(config.unit), text: config.unit},
          ticks: {callback: (v) => new Intl.NumberFormat(lang, {notation: "compact", maximumSignificantDigits: 4}).format(v)}},
      },
    },
  });
})();
