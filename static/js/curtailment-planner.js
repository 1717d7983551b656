// Curtailment plan page: the hourly day-ahead price (USD/MWh, left axis) and the planned power (kW, right axis),
// with the hours in which the plan curtails shaded. Data and words come from the page (json_script
// "plan-chart-data"); numbers are formatted in the page's language. No inline script (CSP).
(function () {
  "use strict";
  const node = document.getElementById("plan-chart-data");
  const canvas = document.getElementById("plan-chart");
  if (!node || !canvas || typeof Chart === "undefined") return;
  const data = JSON.parse(node.textContent);
  const lang = document.documentElement.lang || "en";
  const shade = "rgba(220, 53, 69, 0.15)";

  // Draws a band behind every curtailed hour (before the datasets, so lines stay on top).
  const curtailedBands = {
    id: "curtailedBands",
    beforeDatasetsDraw(chart) {
      const x = chart.scales.x;
      const area = chart.chartArea;
      if (!x || !area) return;
      const ctx = chart.ctx;
      const step = data.labels.length > 1 ? x.getPixelForValue(1) - x.getPixelForValue(0) : area.right - area.left;
      ctx.save();
      ctx.fillStyle = shade;
      data.curtailed.forEach((cut, i) => {
        if (!cut) return;
        const left = Math.max(area.left, x.getPixelForValue(i) - step / 2);
        const right = Math.min(area.right, x.getPixelForValue(i) + step / 2);
        ctx.fillRect(left, area.top, right - left, area.bottom - area.top);
      });
      ctx.restore();
    },
  };

  const number = new Intl.NumberFormat(lang, {maximumFractionDigits: 1});
  new Chart(canvas, {
    type: "line",
    data: {
      labels: data.labels,
      datasets: [
        {
          label: data.words.price, data: data.prices, yAxisID: "price", borderColor: "#0d6efd",
          backgroundColor: "#0d6efd", stepped: "middle", pointRadius: 0, borderWidth: 2,
        },
        {
          label: data.words.power, data: data.power_kw, yAxisID: "power", borderColor: "#198754",
          backgroundColor: "#198754", stepped: "middle", pointRadius: 0, borderWidth: 1.5, borderDash: [4, 3],
        },
      ],
    },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      interaction: {mode: "index", intersect: false},
      plugins: {
        legend: {position: "bottom", labels: {boxWidth: 12}},
        tooltip: {
          callbacks: {
            label: (item) => `${item.dataset.label}: ${number.format(item.parsed.y)}`,
            afterBody: (items) => (items.length && data.curtailed[items[0].dataIndex] ? data.words.curtailed : ""),
          },
        },
      },
      scales: {
        x: {ticks: {autoSkip: true, autoSkipPadding: 16, maxRotation: 0, maxTicksLimit: canvas.clientWidth < 600 ? 4 : 8}},
        price: {position: "left", title: {display: true, text: "USD/MWh"}, ticks: {callback: (v) => number.format(v)}},
        power: {
          position: "right", beginAtZero: true, suggestedMax: data.full_kw, grid: {drawOnChartArea: false},
          title: {display: true, text: "kW"}, ticks: {callback: (v) => number.format(v)},
        },
      },
    },
    plugins: [curtailedBands],
  });
})();
