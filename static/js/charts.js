/*
 * Live line charts on the vendored Chart.js (static/vendor/chart.js, docs/third-party.md).
 *
 * livetrain.lineChart(canvas, {series: [{key, label, axis?}], axes: {y: {title}, y2: {title}}, x: "epoch"})
 * returns {add(key, x, y), set(key, points), clear(), has(key)}. Points are {x, y}; adding
 * a point whose x a series already has replaces it, so a replayed event never draws twice.
 * Animation is off: points arrive as events do, and each is drawn at once.
 */
(function () {
  "use strict";

  const PALETTE = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563",
    "#65a30d", "#9333ea"];

  function colour(index) {
    return PALETTE[index % PALETTE.length];
  }

  function lineChart(canvas, options) {
    const opts = options || {};
    const series = new Map();
    const datasets = [];
    const chartAvailable = typeof window.Chart === "function";
    const axes = opts.axes || { y: {} };

    function makeDataset(spec, index) {
      const dataset = {
        label: spec.label, data: [], yAxisID: spec.axis || "y", borderColor: spec.color || colour(index),
        backgroundColor: spec.color || colour(index), borderWidth: 2, pointRadius: 2, tension: 0,
        borderDash: spec.dashed ? [6, 4] : undefined,
      };
      series.set(spec.key, dataset);
      datasets.push(dataset);
      return dataset;
    }
    (opts.series || []).forEach(makeDataset);

    const scales = { x: { type: "linear", title: { display: true, text: opts.x || "epoch" }, ticks: { precision: 0 } } };
    Object.entries(axes).forEach(([id, axis], i) => {
      scales[id] = {
        type: "linear", position: i === 0 ? "left" : "right", title: { display: Boolean(axis.title), text: axis.title },
        min: axis.min, max: axis.max, grid: { drawOnChartArea: i === 0 },
      };
    });

    const chart = chartAvailable ? new window.Chart(canvas, {
      type: "line",
      data: { datasets },
      options: {
        animation: false, parsing: false, normalized: true, responsive: true, maintainAspectRatio: false,
        interaction: { mode: "nearest", intersect: false },
        scales,
        plugins: { legend: { position: "bottom" } },
      },
    }) : null;

    let pending = false;
    function draw() {
      describe();
      // many events in one frame (a replay after a reconnect) are drawn once
      if (!chart || pending) return;
      pending = true;
      window.requestAnimationFrame(() => {
        pending = false;
        chart.update("none");
      });
    }

    /** What a screen reader hears: the newest value of every series. */
    function describe() {
      const parts = [];
      series.forEach((dataset) => {
        const last = dataset.data[dataset.data.length - 1];
        if (last) parts.push(`${dataset.label}: ${Number(last.y.toPrecision(4))} at ${opts.x || "epoch"} ${last.x}`);
      });
      canvas.setAttribute("aria-label", `${opts.title || "Chart"}. ${parts.join("; ") || "No points yet"}.`);
      canvas.dataset.points = String(datasets.reduce((n, d) => n + d.data.length, 0));
    }

    function put(dataset, x, y) {
      if (y == null || !Number.isFinite(Number(y))) return;
      const point = { x: Number(x), y: Number(y) };
      const data = dataset.data;
      const at = data.findIndex((p) => p.x >= point.x);
      if (at === -1) data.push(point);
      else if (data[at].x === point.x) data[at] = point;
      else data.splice(at, 0, point);
    }

    const api = {
      chart,
      has(key) {
        return series.has(key);
      },
      /** A new series (e.g. another run on an overlay chart). */
      addSeries(spec) {
        return series.get(spec.key) || makeDataset(spec, datasets.length);
      },
      add(key, x, y) {
        const dataset = series.get(key);
        if (!dataset) return;
        put(dataset, x, y);
        draw();
      },
      set(key, points) {
        const dataset = series.get(key);
        if (!dataset) return;
        dataset.data.length = 0;
        points.forEach((p) => put(dataset, p.x, p.y));
        draw();
      },
      removeSeries(key) {
        const dataset = series.get(key);
        if (!dataset) return;
        series.delete(key);
        datasets.splice(datasets.indexOf(dataset), 1);
        draw();
      },
      clear() {
        datasets.forEach((d) => { d.data.length = 0; });
        draw();
      },
    };
    describe();
    return api;
  }

  window.livetrain = Object.assign(window.livetrain || {}, { lineChart, chartColour: colour });
})();
