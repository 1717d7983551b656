// A site's power prices: day-ahead (hourly, stepped) and real-time (15/5-minute) prices in USD/MWh over the days
// the page chose, on a linear time axis (milliseconds; no date adapter needed). Data and words come from the page
// (json_script "power-prices-config"); nothing is fetched.
(function () {
  "use strict";
  const node = document.getElementById("power-prices-config");
  const canvas = document.getElementById("power-price-chart");
  if (!node || !canvas || typeof Chart === "undefined") return;
  const config = JSON.parse(node.textContent);
  const lang = document.documentElement.lang || "en";
  const colors = {day_ahead: "#0d6efd", real_time: "#f7931a"};
  const datasets = Object.entries(config.series).map(([market, points]) => ({
    label: config.labels[market] || market,
    data: points.map(([x, y]) => ({x, y})),
    borderColor: colors[market] || "#6c757d",
    backgroundColor: colors[market] || "#6c757d",
    borderWidth: market === "day_ahead" ? 2 : 1,
    pointRadius: 0,
    stepped: market === "day_ahead" ? "before" : false,
  }));
  if (!datasets.some((d) => d.data.length)) {
    const empty = document.querySelector("[data-testid=chart-empty]");
    if (empty) empty.classList.remove("d-none");
    canvas.parentElement.classList.add("d-none");
    return;
  }
  const xs = datasets.flatMap((d) => d.data.length ? [d.data[0].x, d.data[d.data.length - 1].x] : []);
  const utc = (ms, opts) => new Date(ms).toLocaleString(lang, Object.assign({timeZone: "UTC"}, opts));
  new Chart(canvas, {
    type: "line",
    data: {datasets},
    options: {
      responsive: true, maintainAspectRatio: false, animation: false, parsing: false, normalized: true,
      interaction: {mode: "nearest", axis: "x", intersect: false},
      plugins: {
        legend: {labels: {boxWidth: 12}},
        tooltip: {callbacks: {
          title: (items) => items.length ? utc(items[0].parsed.x, {dateStyle: "medium", timeStyle: "short"}) + " UTC" : "",
          label: (item) => item.dataset.label + ": " + item.parsed.y.toLocaleString(lang, {maximumFractionDigits: 2}) + " " + config.unit,
        }},
      },
      scales: {
        x: {type: "linear", min: Math.min(...xs), max: Math.max(...xs),
          ticks: {maxTicksLimit: window.innerWidth < 576 ? 3 : 6, maxRotation: 0,
          callback: (value) => utc(value, {month: "numeric", day: "numeric"})}},
        y: {title: {display: true, text: config.unit}},
      },
    },
  });
})();
