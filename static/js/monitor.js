/*
 * A run's monitor page (templates/monitor.html).
 *
 * It starts from the stored history the server embedded (thinned to a few hundred samples, the
 * histograms of each layer's newest sample that has them), then follows the run through
 * livetrain.RunFeed with the monitor's events on: weights_update redraws the weight sheet,
 * training_stats the global charts and the warning badge, training_update the per-head metrics
 * (keys `head.<name>.<metric>`). After a reconnect the feed fetches what was missed, in order.
 * Sparklines and histograms are small SVGs drawn here; the two line charts use charts.js.
 */
(function () {
  "use strict";

  const lt = window.livetrain;
  const { fmt, dom } = lt;
  const state = lt.embedded("monitor-state");
  const runId = state.run.run_id;
  const SPARK_POINTS = 120; // points a sparkline keeps
  const SVG = "http://www.w3.org/2000/svg";

  const number = (value) => fmt.number(value);
  const head = document.querySelector(".run-head");
  const sheet = dom.field(document, "layers");
  const activationsList = dom.field(document, "activations");
  const warning = dom.field(head, "warning");
  const headsSection = document.getElementById("heads");

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    Object.entries(attrs || {}).forEach(([key, value]) => node.setAttribute(key, String(value)));
    return node;
  }

  /** A sparkline of `values` (numbers or null), with its newest value named for screen readers. */
  function sparkline(values, label) {
    const width = 120;
    const height = 28;
    const points = values.filter((v) => v != null && Number.isFinite(v));
    const box = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", class: "sparkline" });
    const last = points.length ? points[points.length - 1] : null;
    box.setAttribute("aria-label", `${label}: ${last == null ? "no values yet" : number(last)} (${points.length} samples)`);
    if (points.length < 2) return box;
    const lo = Math.min(...points);
    const hi = Math.max(...points);
    const span = hi - lo || 1;
    const path = points.map((v, i) => {
      const x = (i / (points.length - 1)) * (width - 2) + 1;
      const y = height - 2 - ((v - lo) / span) * (height - 4);
      return `${i ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`;
    }).join("");
    box.append(svg("path", { d: path, fill: "none", stroke: "currentColor", "stroke-width": 1.5 }));
    return box;
  }

  /** A histogram `{edges, counts}` as bars. */
  function histogram(hist, label) {
    const width = 140;
    const height = 36;
    const box = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", class: "histogram" });
    if (!hist || !hist.counts || !hist.counts.length) {
      box.setAttribute("aria-label", `${label}: none yet`);
      return box;
    }
    const top = Math.max(...hist.counts) || 1;
    const bar = width / hist.counts.length;
    hist.counts.forEach((c, i) => {
      const h = (c / top) * (height - 2);
      box.append(svg("rect", { x: (i * bar).toFixed(2), y: (height - h).toFixed(2), width: Math.max(0.5, bar - 0.5).toFixed(2),
        height: h.toFixed(2) }));
    });
    const edges = hist.edges || [];
    const total = hist.counts.reduce((a, b) => a + b, 0);
    box.setAttribute("aria-label", `${label}: ${fmt.count(total)} values in ${hist.counts.length} bins from ` +
      `${number(edges[0])} to ${number(edges[edges.length - 1])}`);
    box.dataset.total = String(total);
    return box;
  }

  function statsText(stats) {
    if (!stats || stats.mean == null) return "—";
    return `${number(stats.mean)} ± ${number(stats.std)} [${number(stats.min)}, ${number(stats.max)}]`;
  }

  // -- the weight sheet -------------------------------------------------------------------------------

  const layers = new Map(); // name -> {row, weightNorms, gradNorms, latest, hist}

  function layerRow(entry) {
    let layer = layers.get(entry.name);
    if (layer) return layer;
    const row = document.createElement("tr");
    row.dataset.layer = entry.name;
    row.innerHTML = '<th scope="row"><span data-field="name"></span> <small data-field="type"></small>' +
      '<br><small data-field="params"></small></th><td data-field="weight_spark"></td><td data-field="grad_spark"></td>' +
      '<td data-field="weight_stats"></td><td data-field="grad_stats"></td><td class="num" data-field="update_ratio"></td>' +
      '<td data-field="hist"></td>';
    dom.setText(row, "name", entry.name);
    dom.setText(row, "type", entry.type);
    dom.setText(row, "params", `${fmt.count(entry.params)} parameters`);
    sheet.append(row);
    layer = { row, weightNorms: [], gradNorms: [], latest: null, hist: null };
    layers.set(entry.name, layer);
    return layer;
  }

  function keep(list, value) {
    list.push(value);
    if (list.length > SPARK_POINTS) list.splice(0, list.length - SPARK_POINTS);
  }

  function addSample(sample) {
    (sample.layers || []).forEach((entry) => {
      const layer = layerRow(entry);
      keep(layer.weightNorms, entry.weight ? entry.weight.norm : null);
      keep(layer.gradNorms, entry.grad ? entry.grad.norm : null);
      layer.latest = entry;
      if (entry.weight_hist) layer.hist = entry.weight_hist;
    });
    renderActivations(sample.activations || []);
    dom.setText(head, "step", fmt.count(sample.step));
    dom.setText(head, "epoch", String(sample.epoch));
    dom.field(head, "empty").hidden = true;
  }

  function renderLayer(layer) {
    const { row, latest } = layer;
    dom.field(row, "weight_spark").replaceChildren(sparkline(layer.weightNorms, `weight norm of layer ${latest.name}`));
    dom.field(row, "grad_spark").replaceChildren(sparkline(layer.gradNorms, `gradient norm of layer ${latest.name}`));
    dom.setText(row, "weight_stats", statsText(latest.weight));
    dom.setText(row, "grad_stats", statsText(latest.grad));
    dom.setText(row, "update_ratio", latest.update_ratio == null ? "—" : number(latest.update_ratio));
    dom.field(row, "hist").replaceChildren(histogram(layer.hist, `weight histogram of layer ${latest.name}`));
  }

  let frame = null;
  function renderSoon() {
    if (frame) return;
    frame = window.requestAnimationFrame(() => {
      frame = null;
      layers.forEach(renderLayer);
    });
  }

  function renderActivations(list) {
    activationsList.replaceChildren(...list.map((a) => {
      const item = document.createElement("li");
      item.dataset.layer = a.name;
      const share = a.dead != null ? a.dead : a.saturated;
      item.textContent = `${a.name} ${a.type}: ${fmt.percent(share)} ${a.dead != null ? "dead" : "saturated"}`;
      return item;
    }));
    if (!list.length) {
      const item = document.createElement("li");
      item.className = "muted";
      item.textContent = "No ReLU, tanh or sigmoid layers sampled.";
      activationsList.append(item);
    }
  }

  // -- global numbers and the warning badge -----------------------------------------------------------

  const gradChart = lt.lineChart(document.getElementById("grad-chart"), {
    title: "Global gradient norm per step", x: "step",
    series: [{ key: "grad_norm", label: "gradient norm" }], axes: { y: { title: "L2 norm", min: 0 } },
  });
  const lrChart = lt.lineChart(document.getElementById("lr-chart"), {
    title: "Learning rate per step", x: "step",
    series: [{ key: "learning_rate", label: "learning rate" }], axes: { y: { title: "learning rate", min: 0 } },
  });
  let warned = state.warned || 0;

  function addStats(stats, live) {
    gradChart.add("grad_norm", stats.step, stats.grad_norm);
    lrChart.add("learning_rate", stats.step, stats.learning_rate);
    dom.setText(head, "grad_norm", number(stats.grad_norm));
    dom.setText(head, "learning_rate", number(stats.learning_rate));
    dom.setText(head, "loss", number(stats.loss));
    const warnings = stats.warnings || [];
    if (live && warnings.length) warned += 1;
    dom.setText(head, "warned", fmt.count(warned));
    warning.hidden = !warnings.length;
    warning.dataset.kind = warnings.length ? warnings[0].kind : "";
    warning.textContent = warnings.length ? `⚠ ${[...new Set(warnings.map((w) => w.kind))].join(", ")} gradients` : "";
    warning.title = warnings.map((w) => w.message).join("\n");
  }

  // -- heads: training_update keys head.<name>.<metric> -------------------------------------------------

  let headsChart = null;
  const headLatest = new Map(); // "name.metric" -> value

  function addUpdate(update) {
    Object.entries(update).forEach(([key, value]) => {
      const match = /^head\.([^.]+)\.(.+)$/.exec(key);
      if (!match || value == null || typeof value !== "number") return;
      if (!headsChart) {
        headsSection.hidden = false;
        headsChart = lt.lineChart(document.getElementById("heads-chart"), {
          title: "Metrics per head per epoch", x: "epoch", series: [], axes: { y: { title: "value" } },
        });
      }
      const series = `${match[1]}.${match[2]}`;
      if (!headsChart.has(series)) headsChart.addSeries({ key: series, label: `${match[1]} ${match[2]}` });
      headsChart.add(series, update.epoch, value);
      headLatest.set(series, { head: match[1], metric: match[2], value });
    });
    if (headLatest.size) {
      dom.field(headsSection, "heads").replaceChildren(...Array.from(headLatest.values(), (h) => {
        const row = document.createElement("tr");
        row.innerHTML = '<th scope="row"></th><td></td><td class="num"></td>';
        row.children[0].textContent = h.head;
        row.children[1].textContent = h.metric;
        row.children[2].textContent = number(h.value);
        return row;
      }));
    }
  }

  // -- start, then follow -------------------------------------------------------------------------------

  state.samples.forEach(addSample);
  Object.entries(state.histograms || {}).forEach(([name, h]) => {
    const layer = layers.get(name);
    if (layer && h.weight_hist) layer.hist = h.weight_hist;
  });
  layers.forEach(renderLayer);
  state.stats.forEach((s) => addStats(s, false));
  state.updates.forEach(addUpdate);

  function onEvent(name, payload, run) {
    if (name === "weights_update") {
      addSample(payload);
      renderSoon();
    } else if (name === "training_stats") {
      addStats(payload, true);
    } else if (name === "training_update") {
      addUpdate(payload);
    }
    dom.setBadge(head.querySelector('.status [data-field="status"]'), run.status);
  }

  const live = lt.connect();
  const feed = new lt.RunFeed(live, { onEvent, monitor: true });
  const run = feed.add(Object.assign({}, state.run, { last_seq: state.last_seq }));
  document.body.dataset.monitorReady = runId; // the browser tests wait for this
  window.livetrain.monitor = { run, layers, feed };
})();
