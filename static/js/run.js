/*
 * One run's page (templates/run.html). The server rendered it complete; this keeps it live.
 *
 * The run's stored events come embedded in the page: they fill the chart, then the run goes
 * to livetrain.RunFeed (live.js), which applies every later event once, in `seq` order, and
 * after a reconnect fetches what it missed, so the chart and the log have no gap and no
 * duplicate. When the run completes while the page is open, the results are fetched once
 * (GET /api/runs/{id}) and drawn as the server draws them.
 *
 * Log lines and numbers are written exactly as src/livetrain/web/runs.py writes them.
 */
(function () {
  "use strict";

  const lt = window.livetrain;
  const { fmt, dom } = lt;
  const state = lt.embedded("run-state");
  const runId = state.run.run_id;
  const isNetwork = state.run.algorithm === "network";
  const held = state.held_out;
  const regression = state.task === "regression";
  const SPLITS = ["train", "val", "test"];
  const SPLIT_NAMES = state.split_names;
  const RESUMABLE = new Set(["cancelled", "interrupted"]);

  // -- words and numbers (as src/livetrain/web/runs.py writes them) -------------------------

  const number = (value) => fmt.number(value);
  const percent = (value) => fmt.percent(value);
  const count = (value) => fmt.count(value);

  function plural(n, word) {
    return `${count(n)} ${word}${n === 1 ? "" : "s"}`;
  }

  function duration(seconds) {
    if (seconds == null) return "—";
    const s = Math.max(0, seconds);
    if (s < 60) return `${s.toFixed(1)} s`;
    const whole = Math.floor(s);
    if (whole < 3600) return `${Math.floor(whole / 60)} min ${whole % 60} s`;
    return `${Math.floor(whole / 3600)} h ${Math.floor((whole % 3600) / 60)} min`;
  }

  function updateSummary(e, network, unit) {
    const heldSplit = e.held_out_split || "test";
    const heldMetrics = (e.metrics || {})[heldSplit] || {};
    const parts = [`${unit} ${e.epoch}/${e.total_epochs}`];
    if (!network && e.size != null && e.size_label != null && e.size_label !== "epoch") {
      parts.push(`${count(e.size)} ${e.size_label}`);
    }
    const isRegression = e.accuracy == null && (e.r2 != null || "r2" in heldMetrics);
    if (e.train_loss != null) parts.push(`loss ${number(e.train_loss)}`);
    // a scikit-learn regressor reports its held-out RMSE as val_loss
    if (e.val_loss != null) parts.push(`${heldSplit} ${isRegression && !network ? "rmse" : "loss"} ${number(e.val_loss)}`);
    if (e.accuracy != null) parts.push(`accuracy ${percent(e.accuracy)}`);
    else if (isRegression) parts.push(`r2 ${number(e.r2 != null ? e.r2 : heldMetrics.r2)}`);
    return parts.join(" · ");
  }

  function finalScore(e) {
    if (e.accuracy != null) return `accuracy ${percent(e.accuracy)}`;
    const metrics = e.metrics || {};
    const heldMetrics = metrics.val || metrics.test || {};
    if (heldMetrics.r2 != null) return `r2 ${number(heldMetrics.r2)}`;
    return "no held-out score";
  }

  /** What an event says, in one line of the log. */
  function summary(name, e) {
    const network = (e.algorithm || "network") === "network";
    const unit = network ? "epoch" : "step";
    const checkpoint = e.checkpoint_epoch != null ? `, checkpoint at epoch ${e.checkpoint_epoch}` : "";
    switch (name) {
      case "run_created": {
        let text = "queued: " + plural((e.total_epochs || 0) - (e.start_epoch || 0), unit);
        if (e.resumed_from) text += `, continuing run ${e.resumed_from} from epoch ${e.start_epoch || 0}`;
        if (e.rerun_of) text += `, rerun of run ${e.rerun_of}`;
        return text;
      }
      case "training_started": {
        const heldName = e.n_val ? "validation" : "test";
        let text = `started: ${plural(e.epochs || 0, unit)} on ${count(e.n_train || 0)} training rows, ` +
          `scored on ${count(e.n_val || e.n_test || 0)} ${heldName} rows`;
        if (e.start_epoch) text += `, from epoch ${e.start_epoch}`;
        return text;
      }
      case "training_update":
        return updateSummary(e, network, unit);
      case "training_complete":
        return "completed: " + finalScore(e) + (e.version ? `, version ${e.version}` : "");
      case "training_error":
        return `failed: ${e.error || "unknown error"}`;
      case "training_cancelled":
        return `cancelled after ${plural(e.epochs_done || 0, unit)}${checkpoint}`;
      case "training_interrupted":
        return `interrupted: ${e.error || "unknown error"}${checkpoint}`;
      default:
        return name;
    }
  }

  function clock(ts) {
    return new Date(ts * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit",
      hourCycle: "h23" });
  }

  /** An element: el("td", {class: "x", dataset: {split: "test"}}, "text", child...). */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([key, value]) => {
      if (value == null || value === false) return;
      if (key === "dataset") Object.assign(node.dataset, value);
      else if (key === "style") node.style.cssText = value;
      else node.setAttribute(key === "className" ? "class" : key, value === true ? "" : value);
    });
    children.flat().forEach((child) => {
      if (child != null) node.append(child instanceof Node ? child : String(child));
    });
    return node;
  }

  // -- the page's parts -----------------------------------------------------------------------

  const head = document.querySelector(".run-head");
  const actions = document.getElementById("run-actions");
  const stopButton = actions.querySelector('[data-action="stop-run"]');
  const resumeButton = actions.querySelector('[data-action="resume"]');
  const rerunButton = actions.querySelector('[data-action="rerun"]');
  const progressBox = document.querySelector('[data-field="run_progress"]');
  const epochBox = document.querySelector('[data-field="epoch_box"]');
  const log = document.getElementById("run-log");
  const resultsSection = document.getElementById("results");
  let stopping = false;
  let resultsShown = state.run.status === "completed";
  let logSeq = Math.max(0, ...Array.from(log.children, (li) => Number(li.dataset.seq) || 0));

  // -- the chart ------------------------------------------------------------------------------

  function chartSpec() {
    const heldName = SPLIT_NAMES[held];
    if (isNetwork) {
      const score = regression
        ? { key: "r2", label: `${heldName} R²`, axis: "y2" }
        : { key: "accuracy", label: `${heldName} accuracy (%)`, axis: "y2" };
      return {
        title: "Losses and " + (regression ? "R²" : "accuracy") + " per epoch", x: "epoch",
        series: [{ key: "train_loss", label: "training loss" }, { key: "val_loss", label: `${heldName} loss`, dashed: true },
          score],
        axes: { y: { title: "loss", min: 0 }, y2: regression ? { title: "R²" } : { title: "accuracy (%)", min: 0, max: 100 } },
      };
    }
    const [score, loss] = regression ? ["r2", "rmse"] : ["accuracy", "log_loss"];
    const scoreName = regression ? "R²" : "accuracy (%)";
    const lossName = regression ? "RMSE" : "log loss";
    return {
      title: `${regression ? "R² and RMSE" : "Accuracy and log loss"} per step`, x: "step",
      // a colour per split, solid for the score and dashed for the loss
      series: [
        { key: `train.${score}`, label: `training ${scoreName}`, color: lt.chartColour(0) },
        { key: `held.${score}`, label: `${heldName} ${scoreName}`, color: lt.chartColour(1) },
        { key: `train.${loss}`, label: `training ${lossName}`, axis: "y2", dashed: true, color: lt.chartColour(0) },
        { key: `held.${loss}`, label: `${heldName} ${lossName}`, axis: "y2", dashed: true, color: lt.chartColour(1) },
      ],
      axes: {
        y: regression ? { title: scoreName } : { title: scoreName, min: 0, max: 100 },
        y2: { title: lossName, min: 0 },
      },
    };
  }

  const chart = lt.lineChart(document.getElementById("run-chart"), chartSpec());
  const scaled = (key, value) => (value != null && key.endsWith("accuracy") ? value * 100 : value);

  function plot(e) {
    if (isNetwork) {
      chart.add("train_loss", e.epoch, e.train_loss);
      chart.add("val_loss", e.epoch, e.val_loss);
      if (regression) chart.add("r2", e.epoch, e.r2);
      else chart.add("accuracy", e.epoch, scaled("accuracy", e.accuracy));
      return;
    }
    const metrics = e.metrics || {};
    const splits = { train: metrics.train || {}, held: metrics[e.held_out_split || held] || {} };
    const keys = regression ? ["r2", "rmse"] : ["accuracy", "log_loss"];
    Object.entries(splits).forEach(([split, values]) => {
      keys.forEach((key) => chart.add(`${split}.${key}`, e.epoch, scaled(key, values[key])));
    });
  }

  // -- the log --------------------------------------------------------------------------------

  function appendLog(name, payload) {
    if (name === "training_progress" || typeof payload.seq !== "number" || payload.seq <= logSeq) return;
    logSeq = payload.seq;
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 24;
    const iso = new Date(payload.ts * 1000).toISOString();
    log.append(el("li", { dataset: { seq: String(payload.seq) } },
      el("time", { datetime: iso }, clock(payload.ts)), " ",
      el("span", { className: "log-event" }, name), " ",
      el("span", { className: "log-text" }, summary(name, payload))));
    if (atBottom) log.scrollTop = log.scrollHeight;
  }

  // -- the logs panel: level filter, search, "hide noisy" (no debug lines, repeats folded) -------------

  const LEVELS = ["debug", "info", "warning", "error"];
  const logLines = state.logs.slice(); // every line, oldest first; the panel shows the ones the filters let through
  const logForm = document.getElementById("log-filters");
  const logList = document.getElementById("log-lines");
  const logEmpty = document.querySelector('[data-field="logs_empty"]');
  let lastShown = null; // the last line drawn, with its element: a repeat folds into it

  function logFilter() {
    const quiet = logForm.elements.quiet.checked;
    return {
      lowest: Math.max(LEVELS.indexOf(logForm.elements.level.value), quiet ? 1 : 0),
      q: logForm.elements.q.value.trim().toLowerCase(),
      quiet,
    };
  }

  function passes(line, f) {
    return LEVELS.indexOf(line.level) >= f.lowest && (!f.q || String(line.message).toLowerCase().includes(f.q));
  }

  function sameLine(a, b) {
    return a && b && a.level === b.level && a.source === b.source && a.message === b.message;
  }

  function logItem(line) {
    const time = line.time || line.ts;
    return el("li", { dataset: { seq: String(line.seq), level: line.level, source: line.source } },
      el("time", { datetime: new Date(time * 1000).toISOString() }, clock(time)), " ",
      el("span", { className: "log-level", dataset: { level: line.level } }, line.level), " ",
      el("span", { className: "log-source" }, line.source), " ",
      el("span", { className: "log-text" }, line.message), " ",
      el("span", { className: "log-count", hidden: true }, ""));
  }

  function setCount(shown) {
    const badge = shown.item.querySelector(".log-count");
    badge.hidden = shown.count < 2;
    badge.textContent = `×${count(shown.count)}`;
    shown.item.dataset.count = String(shown.count);
  }

  /** Draw one more line under the filters: folded into the last one when it repeats it and repeats fold. */
  function showLine(line, f) {
    if (!passes(line, f)) return;
    if (f.quiet && lastShown && sameLine(lastShown.line, line)) {
      lastShown.count += 1;
      setCount(lastShown);
      return;
    }
    lastShown = { line, item: logItem(line), count: 1 };
    logList.append(lastShown.item);
  }

  function renderLogs() {
    const f = logFilter();
    lastShown = null;
    logList.replaceChildren();
    logLines.forEach((line) => showLine(line, f));
    logEmpty.hidden = logList.children.length > 0;
    logEmpty.textContent = logLines.length ? "No log lines match the filters." : "No log lines yet.";
    logList.scrollTop = logList.scrollHeight;
  }

  function addLogLine(payload) {
    if (logLines.length && payload.seq <= logLines[logLines.length - 1].seq) return;
    const line = { seq: payload.seq, ts: payload.ts, time: payload.time, level: payload.level,
      source: payload.source, message: payload.message, data: payload.data };
    logLines.push(line);
    const atBottom = logList.scrollHeight - logList.scrollTop - logList.clientHeight < 24;
    showLine(line, logFilter());
    logEmpty.hidden = logList.children.length > 0;
    if (atBottom) logList.scrollTop = logList.scrollHeight;
  }

  logForm.addEventListener("input", renderLogs);
  logForm.addEventListener("submit", (event) => event.preventDefault());

  // -- the header -------------------------------------------------------------------------------

  function setTime(field, ts) {
    const time = dom.field(head, field);
    if (!ts) {
      time.removeAttribute("datetime");
      dom.setText(head, field, "—");
      return;
    }
    time.dateTime = new Date(ts * 1000).toISOString();
    dom.setText(head, field, fmt.localTime(ts));
  }

  let ticking = null;
  function renderDuration(run) {
    let text = "—";
    if (run.started_at && run.finished_at) text = duration(run.finished_at - run.started_at);
    else if (run.started_at && run.status === "running") text = duration(Date.now() / 1000 - run.started_at);
    dom.setText(head, "duration", text);
    if (run.status === "running" && !ticking) ticking = setInterval(() => renderDuration(run), 1000);
    if (run.status !== "running" && ticking) {
      clearInterval(ticking);
      ticking = null;
    }
  }

  function renderHeader(run) {
    const focused = actions.contains(document.activeElement) ? document.activeElement : null;
    dom.setBadge(head.querySelector('.status [data-field="status"]'), run.status);
    const error = dom.field(head, "error");
    const failed = run.status === "failed" || run.status === "interrupted";
    error.hidden = !(failed && run.error);
    dom.setText(head, "error", failed && run.error ? run.error : "");
    setTime("created_at", run.created_at);
    setTime("started_at", run.started_at);
    setTime("finished_at", run.finished_at);
    renderDuration(run);
    const versionFact = dom.field(head, "version_fact");
    if (versionFact) {
      versionFact.hidden = !run.version;
      dom.setText(head, "version", run.version ? `v${run.version}` : "");
    }

    progressBox.dataset.status = run.status;
    dom.setProgress(progressBox, run);
    if (epochBox && run.status !== "running") epochBox.hidden = true;

    if (!lt.ACTIVE.has(run.status)) stopping = false;
    stopButton.hidden = !lt.ACTIVE.has(run.status);
    // aria-disabled rather than disabled: the button keeps the keyboard focus while the run stops
    stopButton.setAttribute("aria-disabled", String(stopping));
    stopButton.textContent = stopping ? "Stopping…" : "Stop";
    resumeButton.hidden = !(isNetwork && RESUMABLE.has(run.status) && run.has_checkpoint);
    dom.setText(resumeButton, "checkpoint_epoch", String(run.checkpoint_epoch || 0));
    rerunButton.hidden = !lt.FINAL.has(run.status) || (isNetwork && Boolean(run.resumed_from));
    if (focused && focused.hidden) {
      // the button that had the focus went away (Stop, once the run has stopped): keep the focus near it
      const next = actions.querySelector("button:not([hidden])");
      if (next) next.focus();
    }
  }

  function renderEpochProgress(p) {
    if (!epochBox) return;
    const value = p.batches ? (100 * p.batch) / p.batches : 0;
    const text = `epoch ${p.epoch}: batch ${count(p.batch)} of ${count(p.batches)}` +
      (p.train_loss != null ? ` · loss so far ${number(p.train_loss)}` : "");
    const bar = dom.field(epochBox, "epoch_progress");
    bar.setAttribute("aria-valuenow", value.toFixed(1));
    bar.setAttribute("aria-valuetext", text);
    bar.firstElementChild.style.width = value + "%";
    dom.setText(epochBox, "epoch_text", text);
    epochBox.hidden = false;
  }

  // -- results (the twin of run.html's results macros) -------------------------------------------

  function metricText(key, value) {
    if (value == null) return "—";
    if (key === "n") return count(value);
    if (state.percent_metrics.includes(key)) return percent(value);
    return number(value);
  }

  function metricsTable(metrics, splits) {
    const rows = state.metrics.filter(([key]) => splits.some((s) => key in metrics[s]));
    return el("div", { className: "table-wrap" },
      el("table", { className: "metrics-table" },
        el("caption", {}, "Final metrics per split"),
        el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Metric"),
          splits.map((split) => el("th", { scope: "col" }, SPLIT_NAMES[split])))),
        el("tbody", {}, rows.map(([key, label]) => el("tr", { dataset: { metric: key } },
          el("th", { scope: "row" }, label),
          splits.map((split) => el("td", { dataset: { split } }, metricText(key, metrics[split][key]))))))));
  }

  function confusionMatrix(split, counts, open) {
    const n = counts.length;
    const labels = state.labels && state.labels.length === n ? state.labels : counts.map((_, i) => String(i));
    const top = Math.max(0, ...counts.flat()) || 1;
    const total = counts.flat().reduce((a, b) => a + b, 0);
    const name = SPLIT_NAMES[split];
    return el("details", { className: "matrix", dataset: { split }, open },
      el("summary", {}, `Confusion matrix, ${name} split (${count(total)} rows)`),
      el("div", { className: "table-wrap cm-wrap" },
        el("table", { className: "confusion" },
          el("caption", { className: "visually-hidden" }, `Confusion matrix on the ${name} split: a row per actual ` +
            "class, a column per predicted class, the diagonal counts the rows classified right"),
          el("thead", {}, el("tr", {}, el("th", { scope: "col", className: "corner" }, "actual ╲ predicted"),
            labels.map((label) => el("th", { scope: "col" }, el("span", { className: "visually-hidden" }, "predicted "), label)))),
          el("tbody", {}, counts.map((row, i) => el("tr", {},
            el("th", { scope: "row" }, el("span", { className: "visually-hidden" }, "actual "), labels[i]),
            row.map((c, j) => {
              // the square root keeps a few mistakes visible next to a diagonal of hundreds
              const shade = Math.round(Math.sqrt(c / top) * 1000) / 1000;
              return el("td", { className: i === j ? "cm-cell diag" : "cm-cell", style: `--shade: ${shade}` }, count(c));
            })))))));
  }

  function importanceItems(items) {
    return items.map((item) => el("li", {},
      el("span", { className: "bar-label" }, item.feature),
      el("span", { className: "bar", "aria-hidden": "true" }, el("span", { style: `width: ${(item.share * 100).toFixed(1)}%` })),
      el("span", { className: "bar-value" }, number(item.importance))));
  }

  function importances(list) {
    const top = Math.max(0, ...list.map((i) => Math.abs(i.importance))) || 1;
    const items = list.map((i) => Object.assign({}, i, { share: Math.abs(i.importance) / top }));
    const shown = state.importances_shown;
    const figure = el("figure", { className: "importances" },
      el("figcaption", {}, "Feature importances, largest first"),
      el("ol", { className: "bars" }, importanceItems(items.slice(0, shown))));
    if (items.length > shown) {
      figure.append(el("details", { className: "more-bars" },
        el("summary", {}, `${items.length - shown} more features`),
        el("ol", { className: "bars", start: String(shown + 1) }, importanceItems(items.slice(shown)))));
    }
    return figure;
  }

  function modelDownload(run, model) {
    if (!model) return [el("p", { className: "empty" }, "No model to download: its network has been deleted.")];
    const parts = [el("p", { className: "model-link" },
      el("a", { href: lt.path("api", "runs", run.run_id, "model"), download: true }, "Download the model"), " ",
      el("small", {}, `(${model.kind})`))];
    if (model.sha256) parts.push(el("p", { className: "sha" }, "SHA-256 ", el("code", {}, model.sha256)));
    return parts;
  }

  /** The model file of a run that has just completed (the run records its SHA-256, a network's being its version's). */
  function modelOf(run) {
    if (!run.has_model) return null;
    const kind = isNetwork ? `PyTorch weights, version ${run.version}` : "scikit-learn estimator, joblib file";
    return { kind, sha256: run.model_sha256 };
  }

  function renderResults(run, model) {
    const metrics = run.metrics || {};
    const splits = SPLITS.filter((s) => metrics[s] && typeof metrics[s] === "object");
    const box = dom.field(resultsSection, "results");
    const parts = [el("div", { className: "results-metrics" }, metricsTable(metrics, splits))];
    const withMatrix = splits.filter((s) => Array.isArray(metrics[s].confusion_matrix) && metrics[s].confusion_matrix.length);
    if (withMatrix.length) {
      const open = splits.includes("test") ? "test" : splits[splits.length - 1];
      parts.push(el("div", { className: "results-matrices" },
        withMatrix.map((s) => confusionMatrix(s, metrics[s].confusion_matrix, s === open))));
    }
    if (run.feature_importances && run.feature_importances.length) {
      parts.push(el("div", { className: "results-importances" }, importances(run.feature_importances)));
    }
    parts.push(el("div", { className: "results-model" }, modelDownload(run, model)));
    box.replaceChildren(...parts);
    resultsSection.hidden = false;
  }

  async function showResults(run) {
    if (resultsShown) return;
    resultsShown = true;
    try {
      const fetched = await lt.api("GET", lt.path("api", "runs", runId));
      Object.assign(run, fetched, { seq: Math.max(run.seq, fetched.last_seq || 0) });
      renderResults(run, modelOf(run));
      renderHeader(run);
    } catch (err) {
      resultsShown = false;
      lt.notice(`The run completed, but its results could not be fetched (${err.message}): reload the page.`, "error");
    }
  }

  // -- events -------------------------------------------------------------------------------------

  let replaying = true;

  function onEvent(name, payload, run) {
    if (name === "run_log") {
      addLogLine(payload);
      return;
    }
    if (name === "weights_update" || name === "training_stats") return; // the monitor page shows them
    if (name === "training_progress") {
      renderEpochProgress(payload);
      dom.setProgress(progressBox, run);
      return;
    }
    if (name === "run_created" && !run.created_at) run.created_at = payload.ts;
    if (name === "training_started") run.started_at = payload.ts;
    if (lt.FINAL.has(run.status) && name !== "run_created" && name !== "training_started" && name !== "training_update") {
      run.finished_at = payload.ts;
    }
    if (name === "training_update") {
      plot(payload);
      if (epochBox) epochBox.hidden = true; // the next epoch's progress shows it again
    }
    if (name === "training_cancelled" || name === "training_interrupted") {
      run.checkpoint_epoch = payload.checkpoint_epoch;
      run.has_checkpoint = payload.checkpoint_epoch != null;
    }
    appendLog(name, payload);
    if (replaying) return;
    renderHeader(run);
    if (name === "training_complete") showResults(run);
    if (name === "training_complete") lt.notice(`Run ${summary(name, payload)}.`, "done");
    if (name === "training_cancelled") lt.notice(`Run stopped after ${plural(run.epochs_done || 0, isNetwork ? "epoch" : "step")}.`);
    if (name === "training_error") lt.notice(`Run failed: ${payload.error}`, "error");
  }

  const live = lt.connect(); // the feed joins the run's room while the run is going
  const feed = new lt.RunFeed(live, { onEvent, monitor: true });
  // Replay the stored events (read after the run) through the feed: the chart fills, and the
  // feed learns the last `seq`, so after a reconnect it fetches exactly what came later.
  const run = feed.add(Object.assign({}, state.run, { last_seq: 0 }));
  state.events.forEach((stored) => {
    const { event: name, ...payload } = stored;
    feed.apply(run, name, payload);
  });
  if ((state.run.last_seq || 0) >= run.seq) Object.assign(run, state.run); // the server's word on every field
  // the log lines came embedded too, and the monitor's samples are not this page's: both are read
  run.seq = Math.max(run.seq, state.last_seq || 0);
  replaying = false;
  renderLogs();
  renderHeader(run);
  log.querySelectorAll("time").forEach((time) => {
    time.textContent = clock(new Date(time.dateTime).getTime() / 1000);
  });
  log.scrollTop = log.scrollHeight;

  // -- actions ------------------------------------------------------------------------------------

  stopButton.addEventListener("click", async () => {
    if (stopping) return;
    stopping = true; // until the training_cancelled event says it has stopped
    lt.showError(actions, "");
    renderHeader(run);
    try {
      await lt.api("POST", lt.path("api", "runs", runId, "cancel"));
    } catch (err) {
      stopping = false;
      lt.showError(actions, err.message);
    }
    renderHeader(run);
  });

  function startAnother(button, action) {
    lt.busy(actions, async () => {
      const started = await lt.api("POST", lt.path("api", "runs", runId, action));
      window.location.assign(lt.path("runs", started.run_id));
    }).then(() => {
      renderHeader(run);
      // a refused request leaves the page here: give the focus back to the button (disabling it took it away)
      if (!button.hidden && document.activeElement === document.body) button.focus();
    });
  }

  resumeButton.addEventListener("click", () => startAnother(resumeButton, "resume"));
  rerunButton.addEventListener("click", () => startAnother(rerunButton, "rerun"));
})();
