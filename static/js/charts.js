// Draws the figures the server built (optimizations/reports/charts.py) and extends
// the live benchmark chart with the rows each poll brings.
(function () {
  "use strict";
  const CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["lasso2d", "select2d"] };
  const TRACE_FIELDS = ["offered", "achieved", "errors", "p50_ms", "p95_ms", "p99_ms"];

  function draw(root) {
    if (!window.Plotly) return;
    root.querySelectorAll("script.plotly-figure").forEach((script) => {
      const target = document.getElementById(script.dataset.target);
      if (!target || target.dataset.drawn) return;
      const figure = JSON.parse(script.textContent);
      Plotly.newPlot(target, figure.data, figure.layout, CONFIG);
      target.dataset.drawn = "1";
    });
    root.querySelectorAll("script.plotly-extend").forEach((script) => {
      const target = document.getElementById(script.dataset.target);
      const points = JSON.parse(script.textContent);
      script.remove();
      if (!target || !target.dataset.drawn || !points.x.length) return;
      const xs = TRACE_FIELDS.map(() => points.x);
      const ys = TRACE_FIELDS.map((field) => points[field]);
      Plotly.extendTraces(target, { x: xs, y: ys }, TRACE_FIELDS.map((_, i) => i));
    });
  }

  document.addEventListener("DOMContentLoaded", () => draw(document));
  document.addEventListener("htmx:afterSettle", () => draw(document));
  document.addEventListener("htmx:oobAfterSwap", () => draw(document));
})();
