// Dashboard chart: miners by site and status. Data comes from the page (json_script), never inline code.
(function () {
  const source = document.getElementById("by-site-data");
  const canvas = document.getElementById("by-site");
  if (!source || !canvas || typeof Chart === "undefined") return;
  const data = JSON.parse(source.textContent);
  new Chart(canvas, {
    type: "bar",
    data,
    options: { responsive: true, scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } },
  });
})();
