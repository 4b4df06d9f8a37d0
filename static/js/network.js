/*
 * A network's page (templates/network.html), kept live.
 *
 * The server renders everything; this script follows the network's runs through
 * livetrain.RunFeed (live.js), which applies every run event once, in order, and catches up
 * after a reconnect. The training panel shows the active run, or the latest one: its chart
 * is filled from GET /api/runs/{id}/metrics and then from live `training_update` events (a
 * chart point per epoch and series; an epoch already drawn is replaced, never drawn twice).
 * A run started anywhere (this form, a script, another tab) takes over the panel as its
 * `run_created` arrives. When a run completes, the network (GET /api/networks/{id}: status,
 * accuracy, versions) and the server-rendered gallery of predictions are read again.
 */
(function () {
  "use strict";

  const lt = window.livetrain;
  const { fmt, dom } = lt;

  const initial = lt.embedded("network-state");
  const network = initial.network;
  const networkId = network.network_id;
  const classification = !initial.dataset || initial.dataset.task === "classification";

  const panel = document.getElementById("run-panel");
  const runBar = panel.querySelector('[data-bar="run"]');
  const form = document.getElementById("train-form");
  const deleteForm = document.getElementById("delete-form");
  const versionsBody = document.getElementById("versions");

  let versions = initial.versions;
  let resumable = initial.resumable; // the run the Resume button continues (REST shape), or null
  let panelRun = null;
  let galleryVersion = network.current_version;
  let deleted = false;
  let deleting = false;

  // -- the chart ----------------------------------------------------------------------

  const series = [
    { key: "train_loss", label: "training loss" },
    { key: "val_loss", label: "held-out loss", dashed: true },
  ];
  const axes = { y: { title: "loss", min: 0 } };
  if (classification) {
    series.push({ key: "accuracy", label: "held-out accuracy", axis: "y2" });
    axes.y2 = { title: "accuracy", min: 0, max: 1 };
  }
  const canvas = document.getElementById("training-chart");
  const chart = lt.lineChart(canvas, { title: "Loss and accuracy per epoch", x: "epoch", series, axes });

  /** One epoch's metrics (a training_update payload, live or stored) on the chart. */
  function plot(update) {
    series.forEach((s) => chart.add(s.key, update.epoch, update[s.key]));
  }

  // -- live connection and runs -----------------------------------------------------

  const live = lt.connect([{ network_id: networkId }]);
  const table = new lt.RunTable(document.getElementById("runs-heading").parentElement, {
    names: new Map([[networkId, network.name]]), max: initial.runs_per_page, insert: initial.first_page,
  });
  const feed = new lt.RunFeed(live, {
    accept: (payload) => payload.network_id === networkId,
    onEvent: onRunEvent,
  });

  function onRunEvent(name, payload, run) {
    if (name === "run_created" && !run.created_at) run.created_at = payload.ts;
    if (name === "training_cancelled" || name === "training_interrupted") {
      // provisional until the run is read back (runEnded): a kept epoch means a checkpoint
      run.checkpoint_epoch = payload.checkpoint_epoch;
      run.has_checkpoint = payload.checkpoint_epoch != null;
    }
    table.render(run);
    if (name === "run_created") showRun(run);
    if (run === panelRun) followPanelRun(name, payload, run);
    if (name === "run_created" || name === "training_started") network.status = "training";
    if (lt.FINAL.has(run.status)) runEnded(name, payload, run);
    renderHeader();
    renderForm();
  }

  function followPanelRun(name, payload, run) {
    const start = run.start_epoch || 0;
    if (name === "training_started") {
      setEpochBar(0, `epoch ${start + 1} starting`);
    } else if (name === "training_progress") {
      const share = payload.batches ? (100 * payload.batch) / payload.batches : 0;
      setEpochBar(share, `epoch ${payload.epoch}: batch ${fmt.count(payload.batch)} of ${fmt.count(payload.batches)}`);
    } else if (name === "training_update") {
      plot(payload);
      setEpochBar(100, `epoch ${payload.epoch} done`);
    } else if (name === "training_complete") {
      setEpochBar(100, "all epochs done");
    } else if (lt.FINAL.has(run.status)) {
      setEpochBar(0, "");
    }
    renderPanel();
  }

  function runEnded(name, payload, run) {
    if (run.status === "completed") {
      network.status = "trained";
      network.trained = true;
      if (payload.accuracy !== undefined) network.accuracy = payload.accuracy;
      if (payload.version) network.current_version = Math.max(network.current_version || 0, payload.version);
      resumable = null;
      refreshNetwork();
    } else {
      network.status = activeRun() ? "training" : network.current_version > 0 ? "trained" : "created";
      if ((run.status === "cancelled" || run.status === "interrupted") && run.has_checkpoint) resumable = run;
    }
    announce(name, payload, run);
    // The run as stored: whether a checkpoint was kept, the version it made, its final numbers.
    lt.api("GET", lt.path("api", "runs", run.run_id)).then((rest) => {
      const tracked = track(rest);
      table.render(tracked);
      if (tracked.status === "cancelled" || tracked.status === "interrupted") {
        if (tracked.has_checkpoint) resumable = tracked;
        else if (resumable && resumable.run_id === tracked.run_id) resumable = null;
      }
      if (tracked === panelRun) renderPanel();
      renderForm();
    }, (err) => console.warn("livetrain: could not read run", run.run_id, err.message));
  }

  function announce(name, payload, run) {
    if (name === "training_complete") {
      const score = payload.accuracy != null ? `held-out accuracy ${fmt.percent(payload.accuracy)}` : fmt.score(run);
      lt.notice(`Training complete: version v${payload.version}, ${score}.`, "done");
    } else if (name === "training_error") {
      lt.notice(`Training failed: ${payload.error}`, "error");
    } else if (name === "training_cancelled") {
      lt.notice(`Training stopped after epoch ${run.epochs_done || 0}.`);
    } else if (name === "training_interrupted") {
      lt.notice(`Training interrupted: ${payload.error || "the server stopped"}.`, "error");
    }
  }

  /**
   * Track a run as the REST API returned it. A snapshot newer than the events this page has
   * applied moves the feed past them (they are in the snapshot), so the chart of the panel's
   * run fetches the epochs it has not drawn.
   */
  function track(rest) {
    const known = feed.get(rest.run_id);
    const before = known ? known.seq : -1;
    const run = feed.add(rest);
    if (run === panelRun && run.seq > before) loadEpochs(run);
    return run;
  }

  function activeRun() {
    for (const run of feed.runs.values()) {
      if (run.network_id === networkId && lt.ACTIVE.has(run.status)) return run;
    }
    return null;
  }

  // -- the training panel -----------------------------------------------------------

  /** Show `run` in the panel: its stored epochs first, then whatever its events bring. */
  function showRun(run) {
    if (run === panelRun) {
      renderPanel();
      return;
    }
    panelRun = run;
    chart.clear();
    setEpochBar(run.status === "completed" ? 100 : 0, "");
    renderPanel();
    loadEpochs(run);
  }

  async function loadEpochs(run) {
    try {
      const body = await lt.api("GET", lt.path("api", "runs", run.run_id, "metrics"));
      if (run === panelRun) body.metrics.forEach(plot);
    } catch (err) {
      lt.notice(`Could not load the epochs of run ${run.run_id}: ${err.message}`, "error");
    }
  }

  function setEpochBar(value, text) {
    const bar = dom.field(panel, "epoch_progress");
    const clamped = Math.max(0, Math.min(100, value));
    bar.setAttribute("aria-valuenow", clamped.toFixed(1));
    bar.setAttribute("aria-valuetext", text || `${clamped.toFixed(0)}%`);
    bar.firstElementChild.style.width = clamped + "%";
    dom.setText(panel, "epoch_text", text);
  }

  /** The run's outcome in one sentence, as the template's run_result macro words it (announced: it
   *  changes with the status, not every epoch). */
  function resultText(run) {
    const kept = run.has_checkpoint ? `; its checkpoint (epoch ${run.checkpoint_epoch}) can be resumed` : "";
    switch (run.status) {
      case "queued":
        return "Waiting for a worker to start.";
      case "running":
        return "Training: the bars show how far it is.";
      case "completed": {
        const score = run.accuracy != null ? `, held-out accuracy ${fmt.percent(run.accuracy)}`
          : run.val_loss != null ? `, held-out loss ${fmt.number(run.val_loss)}` : "";
        const best = run.best_epoch ? ` (the weights of epoch ${run.best_epoch}, its best)` : "";
        const early = run.stop_reason ? ` Stopped early after epoch ${run.epochs_done}: ${run.stop_reason}.` : "";
        return `Completed: version v${run.version || "?"}${score}${best}.${early}`;
      }
      case "failed":
        return `Failed: ${run.error || "no message"}`;
      case "cancelled":
        return `Stopped after epoch ${run.epochs_done || 0}${kept || "; no checkpoint was kept"}.`;
      case "interrupted":
        return `Interrupted: ${run.error || "the server stopped"}${kept}.`;
      default:
        return "";
    }
  }

  function renderPanel() {
    const run = panelRun;
    if (!run) return;
    panel.dataset.runId = run.run_id;
    panel.dataset.status = run.status || "";
    dom.setText(panel, "panel_title", lt.ACTIVE.has(run.status) ? "Current run" : "Latest run");
    const link = dom.field(panel, "run_link");
    link.hidden = false;
    link.href = lt.path("runs", run.run_id);
    dom.setText(panel, "run_id", run.run_id);
    dom.field(panel, "badge_box").hidden = false;
    dom.setBadge(dom.field(panel, "status"), run.status || "queued");
    const epochs = run.epochs_done ? `${run.epochs_done} of ${run.total_epochs}` : "—";
    dom.setText(panel, "epoch", epochs);
    dom.setText(panel, "accuracy", fmt.percent(run.accuracy));
    dom.setText(panel, "train_loss", fmt.number(run.train_loss));
    dom.setText(panel, "val_loss", fmt.number(run.val_loss));
    dom.setText(panel, "learning_rate", run.learning_rate != null ? String(run.learning_rate) : "—");
    dom.setProgress(runBar, run);
    dom.setText(panel, "result", resultText(run));
    lt.renderStopButton(panel.querySelector('[data-action="stop"]'), run);
  }

  // -- the header, versions and gallery -------------------------------------------------

  function renderHeader() {
    const badge = document.getElementById("network-status");
    dom.setBadge(badge, deleted ? "deleted" : network.status);
    document.getElementById("network-accuracy").textContent = fmt.percent(network.accuracy);
    document.getElementById("network-version").textContent =
      network.current_version ? `v${network.current_version}` : "none yet";
  }

  function versionRow(v) {
    const row = dom.cloneTemplate("version-template");
    const metrics = v.metrics || {};
    row.dataset.version = v.version;
    dom.setText(row, "version", `v${v.version}`);
    dom.field(row, "current").hidden = v.version !== network.current_version;
    dom.setText(row, "accuracy", fmt.percent(metrics.accuracy));
    dom.setText(row, "val_loss", fmt.number(metrics.val_loss));
    dom.setText(row, "train_loss", fmt.number(metrics.train_loss));
    dom.setText(row, "epochs", metrics.epochs == null ? "—" : String(metrics.epochs));
    const time = dom.field(row, "created_at");
    time.dateTime = new Date(v.created_at * 1000).toISOString();
    time.textContent = fmt.localTime(v.created_at);
    const link = dom.field(row, "run_link");
    if (v.run_id) {
      link.href = lt.path("runs", v.run_id);
      dom.setText(row, "run_id", v.run_id);
    } else {
      link.replaceWith("—");
    }
    dom.field(row, "weights").href = lt.path("api", "networks", networkId, "versions", v.version, "weights");
    dom.setText(row, "weights_text", `v${v.version}`);
    return row;
  }

  function renderVersions() {
    versionsBody.replaceChildren(...versions.slice().reverse().map(versionRow));
    document.getElementById("versions-table").hidden = versions.length === 0;
    document.getElementById("versions-empty").hidden = versions.length > 0;
  }

  /** The gallery as the server renders it (class labels, output bars, a table row's inputs). */
  async function refreshGallery() {
    const wanted = network.current_version;
    if (wanted === galleryVersion) return;
    try {
      const response = await fetch(window.location.pathname, { headers: { Accept: "text/html" } });
      if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html").getElementById("gallery");
      if (!fresh || wanted !== network.current_version) return; // a newer version is on its way
      const nodes = Array.from(fresh.childNodes, (node) => document.importNode(node, true));
      document.getElementById("gallery").replaceChildren(...nodes);
      galleryVersion = wanted;
    } catch (err) {
      lt.notice(`Could not show the predictions of v${wanted}: ${err.message}`, "error");
    }
  }

  /** Read the network again: after a run completes, and after every (re)connect. */
  let refreshes = 0;
  async function refreshNetwork() {
    if (deleted) return;
    const asked = ++refreshes;
    let found;
    try {
      found = await lt.api("GET", lt.path("api", "networks", networkId));
      if (asked !== refreshes) return; // a later refresh is on its way with newer data
    } catch (err) {
      if (err.status === 404) markDeleted();
      else lt.notice(`Could not refresh the network: ${err.message}`, "error");
      return;
    }
    for (const key of ["status", "accuracy", "current_version", "trained", "updated_at"]) network[key] = found[key];
    versions = found.versions;
    renderVersions();
    if (found.active_run) {
      const run = track(found.active_run);
      table.render(run);
      showRun(run);
    }
    renderHeader();
    renderForm();
    refreshGallery();
  }

  function markDeleted() {
    if (deleted) return;
    deleted = true;
    document.getElementById("deleted-note").hidden = false;
    form.querySelectorAll("input, select, button").forEach((el) => { el.disabled = true; });
    deleteForm.querySelector("button").disabled = true;
    renderHeader();
    renderForm();
  }

  // -- the train form -----------------------------------------------------------------

  function renderForm() {
    const active = activeRun();
    form.querySelector('[data-action="train"]').disabled = Boolean(active) || deleted;
    dom.field(form, "active_hint").hidden = !active;
    const button = form.querySelector('[data-action="resume"]');
    const hint = dom.field(form, "resume_hint");
    const offer = Boolean(resumable) && !active && !deleted;
    button.hidden = !offer;
    hint.hidden = !offer;
    button.disabled = !offer;
    if (offer) {
      button.dataset.runId = resumable.run_id;
      hint.textContent = `Resume continues run ${resumable.run_id} from its checkpoint at epoch ` +
        `${resumable.checkpoint_epoch}, up to epoch ${resumable.total_epochs}.`;
    }
  }

  function started(rest) {
    const run = track(rest);
    network.status = "training";
    table.render(run);
    showRun(run);
    renderHeader();
    lt.refreshStatus(); // the header's count of active runs
  }

  const FIELDS = [
    ["epochs", { label: "Epochs", integer: true, min: 1 }],
    ["mini_batch_size", { label: "Mini-batch size", integer: true, min: 1 }],
    ["learning_rate", { label: "Learning rate", min: 0, exclusiveMin: true }],
  ];

  // -- training controls: a schedule, early stopping, clipping (the train body's lr_schedule,
  // early_stopping and clip_grad_norm; the server checks them again and answers a 400 naming the field)

  const SCHEDULE_FIELDS = {
    step: [["step_size", "step_size", { label: "Every N epochs", integer: true, min: 1 }],
           ["gamma", "gamma", { label: "Gamma", min: 0, exclusiveMin: true, max: 1 }]],
    exponential: [["gamma", "gamma", { label: "Gamma", min: 0, exclusiveMin: true, max: 1 }]],
    cosine: [["t_max", "t_max", { label: "Over T epochs", integer: true, min: 1 }],
             ["eta_min", "eta_min", { label: "Minimum rate", min: 0 }]],
    reduce_on_plateau: [["factor", "factor", { label: "Factor", min: 0, exclusiveMin: true, max: 1 }],
                        ["plateau_patience", "patience", { label: "Patience", integer: true, min: 0 }],
                        ["min_lr", "min_lr", { label: "Lowest rate", min: 0 }]],
  };

  function readControls() {
    const out = {};
    const kind = form.elements.schedule.value;
    if (kind) {
      const schedule = { type: kind };
      for (const [input, key, options] of SCHEDULE_FIELDS[kind]) {
        const value = lt.readNumber(form, input, options);
        if (value !== undefined) schedule[key] = value;
      }
      out.lr_schedule = schedule;
    }
    const metric = form.elements.stop_metric.value;
    if (metric) {
      const stopping = { metric };
      const patience = lt.readNumber(form, "stop_patience", { label: "Patience", integer: true, min: 1 });
      const delta = lt.readNumber(form, "min_delta", { label: "Smallest improvement", min: 0 });
      if (patience !== undefined) stopping.patience = patience;
      if (delta !== undefined) stopping.min_delta = delta;
      out.early_stopping = stopping;
    }
    if (form.elements.clip_grad_norm) {
      const clip = lt.readNumber(form, "clip_grad_norm", { label: "Largest gradient norm", min: 0, exclusiveMin: true });
      if (clip !== undefined) out.clip_grad_norm = clip;
    }
    return out;
  }

  /** Only the fields of the chosen schedule, and early stopping's only when it is on. */
  function renderControls() {
    const kind = form.elements.schedule.value;
    form.querySelectorAll("[data-schedule]").forEach((field) => {
      field.hidden = !field.dataset.schedule.split(" ").includes(kind);
    });
    const stopping = Boolean(form.elements.stop_metric.value);
    form.querySelectorAll("[data-stopping]").forEach((field) => { field.hidden = !stopping; });
  }

  form.elements.schedule.addEventListener("change", renderControls);
  form.elements.stop_metric.addEventListener("change", renderControls);
  renderControls();

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (activeRun() || deleted) return;
    const body = {};
    try {
      for (const [name, options] of FIELDS) {
        const value = lt.readNumber(form, name, options);
        if (value !== undefined) body[name] = value;
      }
    } catch (err) {
      lt.showError(form, err.message, err.input);
      return;
    }
    if (form.elements.optimizer) body.optimizer = form.elements.optimizer.value;
    try {
      Object.assign(body, readControls());
    } catch (err) {
      lt.showError(form, err.message, err.input);
      return;
    }
    lt.busy(form, async () => {
      const answer = await lt.api("POST", lt.path("api", "networks", networkId, "train"), body);
      started(answer.run);
    }).then(renderForm);
  });

  form.querySelector('[data-action="resume"]').addEventListener("click", () => {
    if (!resumable || activeRun() || deleted) return;
    const source = resumable;
    lt.busy(form, async () => {
      const answer = await lt.api("POST", lt.path("api", "runs", source.run_id, "resume"), {});
      resumable = null;
      started(answer.run);
    }).then(renderForm);
  });

  deleteForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const stops = activeRun() ? " Its run in progress is stopped." : "";
    const question = `Delete ${network.name}? Its versions, weights and checkpoints are removed.${stops} ` +
      "Its runs stay in the run list.";
    if (!window.confirm(question)) return;
    lt.busy(deleteForm, async () => {
      deleting = true;
      try {
        await lt.api("DELETE", lt.path("api", "networks", networkId));
      } catch (err) {
        deleting = false;
        throw err;
      }
      window.location.assign("/");
    });
  });

  live.on("network_deleted", (payload) => {
    if (payload.network_id !== networkId || deleting) return;
    markDeleted();
    lt.notice(`${network.name} was deleted.`, "error");
  });

  live.onConnect(refreshNetwork);

  // -- start ------------------------------------------------------------------------------

  initial.runs.forEach((run) => table.render(feed.add(run)));
  if (initial.panel_run) showRun(feed.add(initial.panel_run));
  renderVersions();
  renderHeader();
  renderForm();
})();
