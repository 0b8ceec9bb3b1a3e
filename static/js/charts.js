// Draws the figures the server built (optimizations/reports/charts.py) and extends
// the live benchmark chart with the rows each poll brings.
(function () {
  "use strict";
  const CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["lasso2d", "select2d"] };
  // The page's language (<html lang>) for the charts' own buttons and dates; the
  // titles and legends come translated from the server.
  const LANGUAGE = document.documentElement.lang || "en";
  const JA = {
    moduleType: "locale",
    name: "ja",
    dictionary: {
      "Autoscale": "自動スケール",
      "Box Select": "矩形選択",
      "Compare data on hover": "ホバー時にデータを比較",
      "Download plot as a png": "PNG でダウンロード",
      "Download plot as a PNG": "PNG でダウンロード",
      "Download plot": "ダウンロード",
      "Pan": "パン",
      "Reset axes": "軸をリセット",
      "Reset view": "表示をリセット",
      "Show closest data on hover": "ホバー時に最も近いデータを表示",
      "Toggle Spike Lines": "スパイクラインの切り替え",
      "Toggle show closest data on hover": "ホバー時の最近傍データ表示を切り替え",
      "Zoom": "ズーム",
      "Zoom in": "拡大",
      "Zoom out": "縮小",
      "Double-click to zoom back out": "ダブルクリックでズームを戻す",
      "Click to enter Colorscale title": "カラースケールのタイトルを入力",
      "Share chart...": "グラフを共有…",
    },
    format: {
      days: ["日曜日", "月曜日", "火曜日", "水曜日", "木曜日", "金曜日", "土曜日"],
      shortDays: ["日", "月", "火", "水", "木", "金", "土"],
      months: ["1月", "2月", "3月", "4月", "5月", "6月", "7月", "8月", "9月", "10月", "11月", "12月"],
      shortMonths: ["1月", "2月", "3月", "4月", "5月", "6月", "7月", "8月", "9月", "10月", "11月", "12月"],
      date: "%Y/%m/%d",
    },
  };
  if (window.Plotly && LANGUAGE === "ja") {
    Plotly.register(JA);
    CONFIG.locale = "ja";
  }
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
