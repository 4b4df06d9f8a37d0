/*
 * livetrain management page.
 *
 * The server renders the page complete; this script keeps it live. Actions go to the REST
 * API with fetch; state changes arrive as Socket.IO events (docs/events.md) and are applied
 * to an in-memory copy of the networks and runs, which is then drawn into the page. There
 * is no polling: after every (re)connect the script fetches the current lists once, to pick
 * up whatever happened while it was not listening.
 */
(function () {
  "use strict";

  const ACTIVE = new Set(["queued", "running"]);
  const MAX_RUNS = 20; // as many as the server renders
  const NOTICE_MS = 8000;

  const initial = JSON.parse(document.getElementById("initial-state").textContent);
  const networks = new Map(initial.networks.map((n) => [n.network_id, n]));
  const runs = new Map(initial.runs.map((r) => [r.run_id, withSeq(r)]));
  const stopping = new Set(); // run ids whose cancel was asked for and has not landed yet
  let broadcast = true; // the server says otherwise in its server_info event
  let socket = null;

  const networkList = document.getElementById("network-list");
  const runList = document.getElementById("run-list");
  const createForm = document.getElementById("create-network");

  // -- formatting ------------------------------------------------------------

  function percent(value) {
    return value == null ? "—" : (value * 100).toFixed(1) + "%";
  }

  function score(run) {
    if (run.accuracy != null) return percent(run.accuracy);
    if (run.val_loss != null) return "loss " + Number(Number(run.val_loss).toPrecision(4));
    return "—";
  }

  function layerLabel(layer) {
    if (layer.out_features) return `${layer.type}(${layer.out_features})`;
    if (layer.out_channels) return `${layer.type}(${layer.out_channels}, ${layer.kernel_size}×${layer.kernel_size})`;
    if (layer.type === "MaxPool2d") return `${layer.type}(${layer.kernel_size})`;
    if (layer.type === "Dropout") return `${layer.type}(${layer.p})`;
    return layer.type;
  }

  function architecture(arch) {
    if (!Array.isArray(arch)) return "";
    return arch.map((item) => (typeof item === "number" ? String(item) : layerLabel(item))).join(" → ");
  }

  function localTime(ts) {
    return new Date(ts * 1000).toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" });
  }

  /** Epochs of this run (a resumed run counts from its checkpoint, as its progress does). */
  function progressText(run) {
    if (run.status === "queued") return "queued";
    const start = run.start_epoch || 0;
    const total = Math.max(0, (run.total_epochs || 0) - start);
    const resumed = start ? `, resumed from epoch ${start}` : "";
    if (run.status === "running" && run.current_epoch) {
      return `epoch ${run.current_epoch - start} of ${total} · ${Math.floor(run.progress || 0)}%${resumed}`;
    }
    // a scikit-learn run counts steps (trees grown, rows added), a network epochs
    const unit = run.algorithm && run.algorithm !== "network" ? "steps" : "epochs";
    return `${Math.max(0, (run.epochs_done || start) - start)} / ${total} ${unit}${resumed}`;
  }

  function networkName(networkId) {
    const network = networks.get(networkId);
    return network ? network.name : networkId || "—";
  }

  /** What trained: the network's name, or the scikit-learn algorithm of a run without a network. */
  function trainerName(run) {
    return run.network_id ? networkName(run.network_id) : run.algorithm || "—";
  }

  // -- small DOM helpers --------------------------------------------------------

  function field(root, name) {
    return root.querySelector(`[data-field="${name}"]`);
  }

  function setText(root, name, text) {
    const el = field(root, name);
    if (el && el.textContent !== text) el.textContent = text;
  }

  function setBadge(el, status) {
    el.dataset.status = status;
    el.textContent = status;
  }

  function cloneTemplate(id) {
    return document.getElementById(id).content.firstElementChild.cloneNode(true);
  }

  function networkCard(networkId) {
    return networkList.querySelector(`.network[data-network-id="${CSS.escape(networkId)}"]`);
  }

  function runRow(runId) {
    return runList.querySelector(`tr[data-run-id="${CSS.escape(runId)}"]`);
  }

  function notice(text, kind) {
    const box = document.createElement("div");
    box.className = "notice";
    box.dataset.kind = kind || "info";
    box.textContent = text;
    document.getElementById("notices").append(box);
    setTimeout(() => box.remove(), NOTICE_MS);
  }

  function showError(form, message, input) {
    const box = form.querySelector(".form-error");
    box.textContent = message || "";
    box.hidden = !message;
    form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
    if (input) {
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
  }

  function updateEmptyStates() {
    document.getElementById("networks-empty").hidden = networks.size > 0;
    document.getElementById("runs-empty").hidden = runList.children.length > 0;
  }

  // -- REST ---------------------------------------------------------------------

  async function api(method, url, body) {
    const options = { method, headers: { Accept: "application/json" } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, options);
    } catch (err) {
      throw new Error("The server could not be reached.");
    }
    let data = null;
    try {
      data = await response.json();
    } catch (err) {
      data = null; // not JSON: the status line says enough
    }
    if (!response.ok) {
      throw new Error(data && data.message ? data.message : `${response.status} ${response.statusText}`);
    }
    return data;
  }

  let statusTimer = null;
  function refreshStatus() {
    clearTimeout(statusTimer);
    statusTimer = setTimeout(async () => {
      try {
        const status = await api("GET", "/api/status");
        document.getElementById("network-count").textContent = status.active_networks;
        document.getElementById("active-count").textContent = status.training_jobs;
      } catch (err) {
        console.warn("livetrain: status refresh failed:", err.message);
      }
    }, 200);
  }

  // -- state --------------------------------------------------------------------

  function withSeq(run) {
    return Object.assign({}, run, { seq: run.last_seq || 0 });
  }

  function activeRunOf(networkId) {
    for (const run of runs.values()) {
      if (run.network_id === networkId && ACTIVE.has(run.status)) return run;
    }
    return null;
  }

  /** Take a run as the REST API returns it, unless this page has already seen newer events. */
  function mergeRun(rest) {
    const known = runs.get(rest.run_id);
    if (!known || (rest.last_seq || 0) >= known.seq) {
      runs.set(rest.run_id, withSeq(rest));
    } else {
      for (const [key, value] of Object.entries(rest)) {
        if (known[key] == null) known[key] = value;
      }
    }
    if (!ACTIVE.has(runs.get(rest.run_id).status)) stopping.delete(rest.run_id);
    renderRun(runs.get(rest.run_id));
  }

  function mergeNetwork(rest) {
    networks.set(rest.network_id, Object.assign(networks.get(rest.network_id) || {}, rest));
    renderNetwork(networks.get(rest.network_id));
    updateEmptyStates();
  }

  function forgetNetwork(networkId) {
    networks.delete(networkId);
    const card = networkCard(networkId);
    if (card) {
      const hadFocus = card.contains(document.activeElement);
      card.remove();
      if (hadFocus) document.getElementById("networks-heading").focus();
    }
    for (const run of runs.values()) {
      if (run.network_id === networkId) renderRun(run);
    }
    updateEmptyStates();
  }

  // -- drawing ------------------------------------------------------------------

  function renderProgress(root, run, withScore) {
    const bar = field(root, "progress");
    const value = Math.max(0, Math.min(100, Number(run.progress) || 0));
    let text = progressText(run);
    if (withScore && run.status === "running" && run.accuracy != null) text += ` · accuracy ${percent(run.accuracy)}`;
    bar.setAttribute("aria-valuenow", value.toFixed(1));
    bar.setAttribute("aria-valuetext", text);
    bar.firstElementChild.style.width = value + "%";
    setText(root, "progress_text", text);
  }

  function renderStopButton(button, run) {
    button.hidden = !run || !ACTIVE.has(run.status);
    button.dataset.runId = run ? run.run_id : "";
    const pending = Boolean(run) && stopping.has(run.run_id);
    button.disabled = pending;
    button.textContent = pending ? "Stopping…" : "Stop";
  }

  function renderNetwork(network) {
    let card = networkCard(network.network_id);
    if (!card) {
      card = cloneTemplate("network-template");
      card.dataset.networkId = network.network_id;
      card.classList.add("is-new");
      if (network.kind === "layers") {
        card.querySelector('input[name="mini_batch_size"]').value = "32";
        const rate = card.querySelector('input[name="learning_rate"]');
        rate.value = "";
        rate.placeholder = "network's";
      }
      networkList.append(card); // oldest first, as GET /api/networks lists them
    }
    card.dataset.status = network.status;
    setText(card, "name", network.name || network.network_id);
    setBadge(field(card, "status"), network.status);
    setText(card, "network_id", network.network_id);
    setText(card, "architecture", architecture(network.architecture));
    setText(card, "dataset_id", network.dataset_id || "");
    setText(card, "accuracy", percent(network.accuracy));
    setText(card, "version", network.current_version ? "v" + network.current_version : "—");
    setText(card, "parameter_count",
      network.parameter_count == null ? "" : Number(network.parameter_count).toLocaleString("en-US"));

    const run = activeRunOf(network.network_id);
    const live = field(card, "live");
    live.hidden = !run;
    field(live, "progress").setAttribute("aria-label", `Training progress of ${network.name}`);
    if (run) renderProgress(live, run, true);
    renderStopButton(card.querySelector('[data-action="stop"]'), run);
    card.querySelector('[data-action="train"]').disabled = Boolean(run);
  }

  function renderRun(run) {
    let row = runRow(run.run_id);
    if (!row) {
      row = cloneTemplate("run-template");
      row.dataset.runId = run.run_id;
      field(row, "progress").setAttribute("aria-label", `Progress of run ${run.run_id}`);
      insertRunRow(row, run);
    }
    row.dataset.status = run.status;
    setText(row, "run_id", run.run_id);
    setText(row, "network", trainerName(run));
    setText(row, "dataset_id", run.dataset_id || "");
    setBadge(field(row, "status"), run.status);
    const error = field(row, "error");
    error.hidden = !run.error;
    error.textContent = run.error || "";
    renderProgress(row, run);
    setText(row, "score", score(run));
    const time = field(row, "created_at");
    if (run.created_at) {
      time.dateTime = new Date(run.created_at * 1000).toISOString();
      setText(row, "created_at", localTime(run.created_at));
    }
    renderStopButton(row.querySelector('[data-action="stop"]'), run);

    const network = networks.get(run.network_id);
    if (network) renderNetwork(network);
    updateEmptyStates();
  }

  /** Newest first; beyond MAX_RUNS the oldest finished rows leave the page. */
  function insertRunRow(row, run) {
    const rows = Array.from(runList.children);
    const after = rows.find((other) => {
      const known = runs.get(other.dataset.runId);
      return known && (known.created_at || 0) < (run.created_at || Infinity);
    });
    runList.insertBefore(row, after || null);
    const extra = Array.from(runList.children).slice(MAX_RUNS);
    for (const old of extra) {
      const known = runs.get(old.dataset.runId);
      if (known && ACTIVE.has(known.status)) continue;
      runs.delete(old.dataset.runId);
      old.remove();
    }
  }

  // -- events from the server -------------------------------------------------

  function endNetworkTraining(run, completed, payload) {
    const network = networks.get(run.network_id);
    if (!network) return;
    if (completed) {
      network.status = "trained";
      network.accuracy = payload.accuracy;
      if (payload.version) network.current_version = payload.version;
      network.trained = true;
    } else {
      network.status = network.current_version > 0 ? "trained" : "created";
    }
  }

  const RUN_EVENTS = {
    training_started(run, p) {
      run.status = "running";
      run.total_epochs = p.total_epochs;
      run.start_epoch = p.start_epoch;
      run.epochs_done = p.start_epoch || 0;
      run.dataset_id = p.dataset_id || run.dataset_id;
      run.progress = 0;
    },
    training_progress(run, p) {
      run.status = "running";
      run.current_epoch = p.epoch;
      run.total_epochs = p.total_epochs;
      run.progress = p.progress;
      run.train_loss = p.train_loss;
    },
    training_update(run, p) {
      run.status = "running";
      run.current_epoch = null;
      run.epochs_done = p.epoch;
      run.total_epochs = p.total_epochs;
      run.progress = p.progress;
      run.accuracy = p.accuracy;
      run.train_loss = p.train_loss;
      run.val_loss = p.val_loss;
    },
    training_complete(run, p) {
      run.status = "completed";
      run.current_epoch = null;
      run.progress = 100;
      run.epochs_done = run.total_epochs = p.total_epochs || run.total_epochs;
      run.accuracy = p.accuracy;
      run.val_loss = p.val_loss;
      run.version = p.version;
      endNetworkTraining(run, true, p);
      const result = p.accuracy != null ? `accuracy ${percent(p.accuracy)}` : `held-out loss ${score(run)}`;
      notice(`${trainerName(run)}: training complete, ${result}${p.version ? `, v${p.version}` : ""}.`, "done");
    },
    training_error(run, p) {
      run.status = "failed";
      run.current_epoch = null;
      run.error = p.error;
      endNetworkTraining(run, false, p);
      notice(`${trainerName(run)}: training failed: ${p.error}`, "error");
    },
    training_cancelled(run, p) {
      run.status = "cancelled";
      run.current_epoch = null;
      if (p.epochs_done != null) run.epochs_done = p.epochs_done;
      endNetworkTraining(run, false, p);
      notice(`${trainerName(run)}: training stopped after ${run.epochs_done || 0} epochs.`);
    },
    training_interrupted(run, p) {
      run.status = "interrupted";
      run.current_epoch = null;
      run.error = p.error;
      endNetworkTraining(run, false, p);
    },
  };

  function onRunEvent(name, payload) {
    let run = runs.get(payload.run_id);
    if (!run) {
      // A run this page has not seen (started elsewhere, or before the last resync).
      run = {
        run_id: payload.run_id, job_id: payload.run_id, network_id: payload.network_id,
        dataset_id: payload.dataset_id || null, status: "queued", progress: 0, epochs_done: 0,
        total_epochs: payload.total_epochs || null, accuracy: null, val_loss: null, error: null,
        created_at: payload.ts, seq: 0,
      };
      runs.set(run.run_id, run);
      api("GET", `/api/runs/${encodeURIComponent(run.run_id)}`).then(mergeRun, () => {});
    }
    if (typeof payload.seq === "number") {
      if (payload.seq <= run.seq) return; // already applied (a resync got there first)
      run.seq = payload.seq;
    }
    RUN_EVENTS[name](run, payload);
    if (!ACTIVE.has(run.status)) {
      stopping.delete(run.run_id);
      refreshStatus();
    }
    renderRun(run);
  }

  function onRunCreated(payload) {
    const network = networks.get(payload.network_id);
    if (network) network.status = "training";
    if (!runs.has(payload.run_id)) {
      runs.set(payload.run_id, {
        run_id: payload.run_id, job_id: payload.run_id, network_id: payload.network_id,
        algorithm: payload.algorithm, experiment_id: payload.experiment_id,
        dataset_id: payload.dataset_id || null, status: payload.status || "queued", progress: 0,
        epochs_done: payload.start_epoch || 0, total_epochs: payload.total_epochs || null,
        accuracy: null, val_loss: null, error: null, created_at: payload.ts, seq: payload.seq || 0,
      });
      renderRun(runs.get(payload.run_id));
      api("GET", `/api/runs/${encodeURIComponent(payload.run_id)}`).then(mergeRun, () => {});
    } else if (network) {
      renderNetwork(network);
    }
    refreshStatus();
  }

  function onNetworkCreated(payload) {
    if (!networks.has(payload.network_id)) {
      mergeNetwork({
        network_id: payload.network_id, name: payload.name, architecture: payload.architecture,
        kind: payload.architecture && typeof payload.architecture[0] === "number" ? "layer_sizes" : "layers",
        status: "created", accuracy: null, current_version: 0, dataset_id: "", parameter_count: null,
      });
      // The event carries no dataset or size: fetch the list once to complete the card.
      api("GET", "/api/networks").then((body) => {
        const found = body.networks.find((n) => n.network_id === payload.network_id);
        if (found && networks.has(found.network_id)) mergeNetwork(found);
      }, () => {});
    }
    if (!broadcast) subscribe({ network_id: payload.network_id });
    refreshStatus();
  }

  function onNetworkDeleted(payload) {
    forgetNetwork(payload.network_id);
    refreshStatus();
  }

  /** After a (re)connect: take the server's current lists, then apply only newer events. */
  async function resync() {
    try {
      const [networkBody, runBody] = await Promise.all([
        api("GET", "/api/networks"),
        api("GET", `/api/runs?limit=${MAX_RUNS}`),
      ]);
      const present = new Set(networkBody.networks.map((n) => n.network_id));
      for (const id of Array.from(networks.keys())) {
        if (!present.has(id)) forgetNetwork(id);
      }
      networkBody.networks.forEach(mergeNetwork);
      runBody.runs.slice().reverse().forEach(mergeRun);
      refreshStatus();
    } catch (err) {
      notice(`Could not refresh the page's data: ${err.message}`, "error");
    }
  }

  function subscribe(room) {
    socket.emit("subscribe", room, (ack) => {
      if (!ack || !ack.ok) console.warn("livetrain: subscribe failed", room, ack);
    });
  }

  function setConnection(state, text) {
    const el = document.getElementById("connection");
    el.dataset.state = state;
    el.textContent = text;
  }

  function connect() {
    if (typeof window.io !== "function") {
      setConnection("offline", "Live updates unavailable");
      return;
    }
    socket = window.io();
    socket.on("connect", () => {
      setConnection("live", "Live");
      resync();
    });
    socket.on("disconnect", () => setConnection("offline", "Offline: reconnecting…"));
    socket.on("connect_error", () => setConnection("offline", "Offline: reconnecting…"));
    socket.on("server_info", (info) => {
      broadcast = info.broadcast_events !== false;
      // Without broadcasting, training events go only to rooms: join every network's.
      if (!broadcast) networks.forEach((n) => subscribe({ network_id: n.network_id }));
    });
    Object.keys(RUN_EVENTS).forEach((name) => socket.on(name, (payload) => onRunEvent(name, payload)));
    socket.on("run_created", onRunCreated);
    socket.on("network_created", onNetworkCreated);
    socket.on("network_deleted", onNetworkDeleted);
  }

  // -- user actions -------------------------------------------------------------

  /** Run `work` with the form's buttons disabled; its error, if any, is shown in the form. */
  async function busy(form, work) {
    const buttons = Array.from(form.querySelectorAll("button"));
    buttons.forEach((b) => { b.disabled = true; });
    showError(form, "");
    try {
      await work();
    } catch (err) {
      showError(form, err.message);
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
      const card = form.closest(".network");
      const network = card && networks.get(card.dataset.networkId);
      if (network) renderNetwork(network); // Train and Stop follow the network's run again
    }
  }

  function readNumber(form, name, label, integer) {
    const input = form.elements[name];
    if (input.validity.badInput) throw Object.assign(new Error(`${label} must be a number.`), { input });
    const text = input.value.trim();
    if (!text) return undefined;
    const value = Number(text);
    if (!Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
      throw Object.assign(new Error(`${label} must be a positive ${integer ? "whole number" : "number"}.`), { input });
    }
    return value;
  }

  function updateLayerPlaceholder() {
    const option = createForm.elements.dataset_id.selectedOptions[0];
    if (!option) return;
    const input = createForm.elements.layer_sizes;
    input.placeholder = option.dataset.task === "classification"
      ? `e.g. ${option.dataset.features}, 30, ${option.dataset.classes}`
      : "regression: create it from layers (API)";
  }

  createForm.elements.dataset_id.addEventListener("change", updateLayerPlaceholder);

  createForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const body = { dataset_id: createForm.elements.dataset_id.value };
    const sizesInput = createForm.elements.layer_sizes;
    const sizesText = sizesInput.value.trim();
    if (sizesText) {
      const sizes = sizesText.split(/[\s,]+/).filter(Boolean).map(Number);
      if (sizes.length < 2 || sizes.some((s) => !Number.isInteger(s) || s < 1)) {
        showError(createForm, "Layer sizes must be two or more whole numbers separated by commas, e.g. 64, 30, 10.", sizesInput);
        return;
      }
      body.layer_sizes = sizes;
    }
    const name = createForm.elements.name.value.trim();
    if (name) body.name = name;
    busy(createForm, async () => {
      const network = await api("POST", "/api/networks", body);
      mergeNetwork(network);
      sizesInput.value = "";
      createForm.elements.name.value = "";
      notice(`Created ${network.name}.`);
      refreshStatus();
    });
  });

  networkList.addEventListener("submit", (event) => {
    const form = event.target.closest('form[data-form="train"]');
    if (!form) return;
    event.preventDefault();
    const networkId = form.closest(".network").dataset.networkId;
    const body = {};
    try {
      for (const [name, label, integer] of [
        ["epochs", "Epochs", true],
        ["mini_batch_size", "Mini-batch size", true],
        ["learning_rate", "Learning rate", false],
      ]) {
        const value = readNumber(form, name, label, integer);
        if (value !== undefined) body[name] = value;
      }
    } catch (err) {
      showError(form, err.message, err.input);
      return;
    }
    busy(form, async () => {
      const started = await api("POST", `/api/networks/${encodeURIComponent(networkId)}/train`, body);
      const network = networks.get(networkId);
      if (network) network.status = "training";
      mergeRun(started.run);
      refreshStatus();
    });
  });

  async function stopRun(runId) {
    const run = runs.get(runId);
    stopping.add(runId);
    if (run) renderRun(run);
    try {
      mergeRun(await api("POST", `/api/runs/${encodeURIComponent(runId)}/cancel`));
    } catch (err) {
      stopping.delete(runId);
      if (run) renderRun(run);
      notice(`Could not stop run ${runId}: ${err.message}`, "error");
    }
  }

  async function deleteNetwork(card) {
    const networkId = card.dataset.networkId;
    const name = networkName(networkId);
    if (!window.confirm(`Delete ${name}? Its versions and weights are removed; its runs stay in the list.`)) return;
    const form = card.querySelector("form");
    busy(form, async () => {
      await api("DELETE", `/api/networks/${encodeURIComponent(networkId)}`);
      forgetNetwork(networkId);
      notice(`Deleted ${name}.`);
      refreshStatus();
    });
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    if (button.dataset.action === "stop" && button.dataset.runId) stopRun(button.dataset.runId);
    if (button.dataset.action === "delete") deleteNetwork(button.closest(".network"));
  });

  // -- start ----------------------------------------------------------------------

  document.getElementById("networks-heading").tabIndex = -1;
  updateLayerPlaceholder();
  networks.forEach(renderNetwork);
  Array.from(runs.values()).forEach(renderRun);
  updateEmptyStates();
  connect();
})();
