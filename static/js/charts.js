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

  const WORDS = {
    en: { data: "The chart's data", series: "Series", points: "Points", lowest: "Lowest", highest: "Highest", latest: "Latest", chart: "Chart", table: "its data follow in a table" },
    ja: { data: "グラフのデータ", series: "系列", points: "点数", lowest: "最小", highest: "最大", latest: "最新", chart: "グラフ", table: "データは下の表にあります" },
  };
  const words = () => WORDS[(document.documentElement.lang || "en").slice(0, 2)] || WORDS.en;

  function titleOf(figure) {
    const title = figure.layout && figure.layout.title;
    const text = typeof title === "string" ? title : title && title.text;
    const notes = ((figure.layout && figure.layout.annotations) || []).map((a) => a.text);
    return [text, ...notes].filter(Boolean).join(" · ");
  }

  function shown(value) {
    if (typeof value !== "number") return value == null ? "—" : String(value);
    return value.toLocaleString(document.documentElement.lang || undefined, { maximumFractionDigits: 2 });
  }

  // Each series' extent, as the chart's text alternative (a table screen readers read).
  function dataTable(figure) {
    const w = words();
    const details = document.createElement("details");
    details.className = "chart-data";
    const summary = document.createElement("summary");
    summary.textContent = w.data;
    details.append(summary);
    const table = document.createElement("table");
    const head = table.createTHead().insertRow();
    [w.series, w.points, w.lowest, w.highest, w.latest].forEach((label) => {
      const th = document.createElement("th");
      th.textContent = label;
      head.append(th);
    });
    const body = table.createTBody();
    figure.data.forEach((trace, index) => {
      const values = (trace.orientation === "h" ? trace.x : trace.y) || [];
      const numbers = values.filter((v) => typeof v === "number");
      const row = body.insertRow();
      [trace.name || `${index + 1}`, numbers.length,
        numbers.length ? Math.min(...numbers) : null, numbers.length ? Math.max(...numbers) : null,
        numbers.length ? numbers[numbers.length - 1] : null].forEach((cell) => {
        row.insertCell().textContent = shown(cell);
      });
    });
    details.append(table);
    return details;
  }

  // A chart of one point is a figure, not a chart: the value, its series and when.
  function singlePoint(figure) {
    const traces = figure.data.filter((t) => (t.y || []).some((v) => v != null));
    if (!traces.length || traces.some((t) => t.type === "bar" || t.type === "box")) return null;
    if (traces.some((t) => (t.x || []).filter((x, i) => t.y[i] != null).length > 1)) return null;
    const box = document.createElement("div");
    box.className = "chart-figure";
    traces.forEach((trace) => {
      const i = trace.y.findIndex((v) => v != null);
      const line = document.createElement("p");
      const figureValue = document.createElement("strong");
      figureValue.textContent = shown(trace.y[i]);
      line.append(figureValue, ` ${trace.name || ""}`);
      if (trace.x && trace.x[i] != null) line.append(` · ${String(trace.x[i]).replace("T", " ").slice(0, 16)}`);
      box.append(line);
    });
    return box;
  }

  // On a phone (a chart narrower than NARROW px) long titles wrap onto lines of their
  // own, subplot titles get smaller, and a figure with a layout for narrow screens
  // (layout.meta.narrow, e.g. the SLO trends one to a line) takes it.
  const NARROW = 560;
  function wrapped(text, limit) {
    if (typeof text !== "string" || text.length <= limit || text.includes("<br>")) return text;
    const lines = [];
    let line = "";
    text.split(" ").forEach((word) => {
      if (line && `${line} ${word}`.length > limit) {
        lines.push(line);
        line = word;
      } else {
        line = line ? `${line} ${word}` : word;
      }
    });
    lines.push(line);
    return lines.join("<br>");
  }

  function fitted(layout, width, traces) {
    if (!width || width >= NARROW) return layout;
    const out = Object.assign({}, layout, (layout.meta && layout.meta.narrow) || {});
    const limit = Math.max(20, Math.floor(width / 9));
    const title = out.title;
    const text = typeof title === "string" ? title : title && title.text;
    const lines = wrapped(text, limit);
    if (lines && lines !== text) {
      const extra = lines.split("<br>").length - 1;
      out.title = Object.assign({}, typeof title === "string" ? {} : title, {
        text: lines, font: { size: 15 }, yref: "container", y: 1, yanchor: "top", pad: { t: 10 },
      });
      out.margin = Object.assign({}, out.margin, { t: ((out.margin && out.margin.t) || 48) + 19 * extra });
    }
    // The legend wraps onto more lines on a phone: room for them, not less for the plot.
    if (out.showlegend !== false && out.height && traces > 1) out.height += 60;
    if (out.annotations) {
      out.annotations = out.annotations.map((note) => Object.assign({}, note, {
        text: wrapped(note.text, limit + 8),
        font: Object.assign({}, note.font, { size: Math.min((note.font && note.font.size) || 16, 13) }),
      }));
    }
    return out;
  }

  // A figure the server decided is not a chart (charts.as_numbers / as_message): the
  // numbers, or the sentence saying why there is nothing to draw.
  function notAChart(figure) {
    const meta = figure.layout && figure.layout.meta;
    if (!meta || (meta.show !== "numbers" && meta.show !== "message")) return null;
    const box = document.createElement("div");
    box.className = "chart-figure";
    if (meta.title) box.append(Object.assign(document.createElement("p"), { className: "muted", textContent: meta.title }));
    if (meta.show === "message") {
      box.append(Object.assign(document.createElement("p"), { className: "empty", textContent: meta.text }));
      return box;
    }
    const list = document.createElement("dl");
    list.className = "chart-numbers";
    meta.items.forEach((item) => {
      const group = document.createElement("div");
      group.append(Object.assign(document.createElement("dt"), { textContent: item.label }));
      group.append(Object.assign(document.createElement("dd"), { textContent: item.value }));
      list.append(group);
    });
    box.append(list);
    if (meta.note) box.append(Object.assign(document.createElement("p"), { className: "muted", textContent: meta.note }));
    return box;
  }

  function draw(root) {
    if (!window.Plotly) return;
    root.querySelectorAll("script.plotly-figure").forEach((script) => {
      const target = document.getElementById(script.dataset.target);
      if (!target || target.dataset.drawn) return;
      const figure = JSON.parse(script.textContent);
      const title = titleOf(figure);
      const live = script.dataset.target.endsWith("-timeline");
      target.dataset.drawn = "1";
      const decided = notAChart(figure);
      if (decided) {
        target.replaceChildren(decided);
        target.classList.add("as-figure");
        return;
      }
      const single = live ? null : singlePoint(figure);
      if (single) {
        if (title) single.prepend(Object.assign(document.createElement("p"), { className: "muted", textContent: title }));
        target.replaceChildren(single);
        target.classList.add("as-figure");
        return;
      }
      Plotly.newPlot(target, figure.data, fitted(figure.layout, target.clientWidth, figure.data.length), CONFIG);
      target.setAttribute("role", "figure");
      target.setAttribute("aria-label", `${title || words().chart}: ${words().table}`);
      if (!live) target.after(dataTable(figure));
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
