// ROI waterfall: profit before → each factor's part → profit after, as a floating bar chart (Chart.js draws a
// bar from [low, high]). The figures and the words come from the page (json_script "roi-chart-data"): the
// server computed them exactly; this only draws them. Increases green, decreases red, the two totals grey.
(function () {
  "use strict";
  const node = document.getElementById("roi-chart-data");
  const canvas = document.getElementById("roi-waterfall");
  if (!node || !canvas || typeof Chart === "undefined") return;
  const data = JSON.parse(node.textContent);
  if (!data) return;
  const lang = document.documentElement.lang || "en";
  const money = new Intl.NumberFormat(lang, {minimumFractionDigits: 2, maximumFractionDigits: 2});
  const box = canvas.closest("[data-roi-chart]");
  if (box) box.style.height = "320px";

  const bars = [];
  const colors = [];
  const kinds = [];
  const grey = "rgba(108, 117, 125, 0.8)";
  const before = Number(data.before);
  bars.push([0, before]);
  colors.push(grey);
  kinds.push(data.total);
  let level = before;
  for (const raw of data.parts) {
    const part = Number(raw);
    bars.push([level, level + part]);
    colors.push(part >= 0 ? "rgba(25, 135, 84, 0.85)" : "rgba(220, 53, 69, 0.85)");
    kinds.push(part >= 0 ? data.increase : data.decrease);
    level += part;
  }
  bars.push([0, Number(data.after)]);
  colors.push(grey);
  kinds.push(data.total);
  const shown = [data.before, ...data.parts, data.after];

  new Chart(canvas, {
    type: "bar",
    data: {
      labels: data.labels,
      datasets: [{label: data.axis, data: bars, backgroundColor: colors, borderSkipped: false}],
    },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      plugins: {
        legend: {display: false},
        tooltip: {
          callbacks: {
            label: (ctx) => kinds[ctx.dataIndex] + ": " + money.format(Number(shown[ctx.dataIndex])) + " USD",
          },
        },
      },
      scales: {
        x: {ticks: {autoSkip: false, maxRotation: 60, minRotation: 0}},
        y: {title: {display: true, text: data.axis}, ticks: {callback: (v) => money.format(v)}},
      },
    },
  });
})();
