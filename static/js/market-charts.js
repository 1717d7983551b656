// The market page: BTC price (USD, left axis) with difficulty (T, right axis), and hashprice (USD per TH/s per
// day) over the chosen days. Data and words come from the page (json_script "market-config"); nothing is fetched.
(function () {
  "use strict";
  const node = document.getElementById("market-config");
  if (!node || typeof Chart === "undefined") return;
  const config = JSON.parse(node.textContent);
  const lang = document.documentElement.lang || "en";
  const ticks = {maxTicksLimit: window.innerWidth < 576 ? 3 : 6, maxRotation: 0, autoSkip: true};
  const fmt = (digits) => (value) => Number(value).toLocaleString(lang, {maximumFractionDigits: digits});
  function line(label, data, color, axis) {
    return {label, data, borderColor: color, backgroundColor: color, borderWidth: 1.5, pointRadius: 0, yAxisID: axis};
  }
  const common = {responsive: true, maintainAspectRatio: false, animation: false,
    interaction: {mode: "index", intersect: false}, plugins: {legend: {labels: {boxWidth: 12}}}};
  const priceCanvas = document.getElementById("market-price-chart");
  if (priceCanvas) {
    new Chart(priceCanvas, {
      type: "line",
      data: {labels: config.dates, datasets: [
        line(config.labels.price, config.price, "#f7931a", "y"),
        line(config.labels.difficulty, config.difficulty_t, "#6f42c1", "y1"),
      ]},
      options: Object.assign({}, common, {scales: {
        x: {ticks},
        y: {position: "left", title: {display: true, text: "USD"}, ticks: {callback: fmt(0)}},
        y1: {position: "right", title: {display: true, text: "T"}, grid: {drawOnChartArea: false}, ticks: {callback: fmt(0)}},
      }}),
    });
  }
  const hpCanvas = document.getElementById("market-hashprice-chart");
  if (hpCanvas) {
    new Chart(hpCanvas, {
      type: "line",
      data: {labels: config.dates, datasets: [line(config.labels.hashprice, config.hashprice, "#198754", "y")]},
      options: Object.assign({}, common, {plugins: {legend: {display: false}}, scales: {
        x: {ticks}, y: {title: {display: true, text: "USD/TH/s/day"}, ticks: {callback: fmt(3)}},
      }}),
    });
  }
})();
