/*
 * The dashboard (templates/dashboard.html): network cards with live progress and a train
 * form, and the recent runs. Runs come and go through livetrain.RunFeed (live.js), which
 * applies every run event once and catches up after a reconnect; networks arrive with
 * network_created / network_deleted. A run started from a script shows up without a reload.
 */
(function () {
  "use strict";

  const lt = window.livetrain;
  const { fmt, dom } = lt;
  const END_EVENTS = new Set(["training_complete", "training_error", "training_cancelled", "training_interrupted"]);

  const initial = lt.embedded("initial-state");
  const networks = new Map(initial.networks.map((n) => [n.network_id, n]));
  const names = new Map(initial.networks.map((n) => [n.network_id, n.name]));
  const networkList = document.getElementById("network-list");
  const createForm = document.getElementById("create-network");
  const onFirstPage = initial.first_page;

  const live = lt.connect();
  const table = new lt.RunTable(document.getElementById("runs-heading").parentElement,
    { names, max: initial.runs_per_page, insert: onFirstPage.runs });
  const feed = new lt.RunFeed(live, {
    accept: () => true, // every new run belongs on the dashboard
    onEvent(name, payload, run) {
      if (name === "run_created" && !run.created_at) run.created_at = payload.ts;
      const network = networks.get(run.network_id);
      if (network) {
        if (name === "run_created" || name === "training_started") network.status = "training";
        if (lt.FINAL.has(run.status)) endNetworkTraining(network, run, payload);
      }
      table.render(run);
      if (network) renderNetwork(network);
      if (name === "run_created" || END_EVENTS.has(name)) countRun(name, run);
      announce(name, payload, run);
    },
  });
  initial.runs.forEach((run) => feed.add(run));
  initial.active_runs.forEach((run) => feed.add(run));

  function trainerName(run) {
    return run.network_id ? names.get(run.network_id) || run.network_id : run.algorithm || "—";
  }

  function announce(name, payload, run) {
    if (name === "training_complete") {
      const result = payload.accuracy != null ? `accuracy ${fmt.percent(payload.accuracy)}` : `held-out ${fmt.score(run)}`;
      lt.notice(`${trainerName(run)}: training complete, ${result}${payload.version ? `, v${payload.version}` : ""}.`, "done");
    } else if (name === "training_error") {
      lt.notice(`${trainerName(run)}: training failed: ${payload.error}`, "error");
    } else if (name === "training_cancelled") {
      lt.notice(`${trainerName(run)}: training stopped after ${run.epochs_done || 0} ${fmt.unit(run)}.`);
    }
  }

  function endNetworkTraining(network, run, payload) {
    if (run.status === "completed") {
      network.status = "trained";
      network.trained = true;
      if (payload.accuracy !== undefined) network.accuracy = payload.accuracy;
      if (payload.version) network.current_version = payload.version;
    } else {
      network.status = network.current_version > 0 ? "trained" : "created";
    }
  }

  function activeRunOf(networkId) {
    for (const run of feed.runs.values()) {
      if (run.network_id === networkId && lt.ACTIVE.has(run.status)) return run;
    }
    return null;
  }

  // -- network cards ------------------------------------------------------------------

  function networkCard(networkId) {
    return networkList.querySelector(`.network[data-network-id="${CSS.escape(networkId)}"]`);
  }

  function updateEmptyState() {
    document.getElementById("networks-empty").hidden = networks.size > 0;
  }

  function renderNetwork(network) {
    let card = networkCard(network.network_id);
    if (!card) {
      card = dom.cloneTemplate("network-template");
      card.dataset.networkId = network.network_id;
      card.classList.add("is-new");
      dom.field(card, "name").href = lt.path("networks", network.network_id);
      if (network.kind === "layers") {
        card.querySelector('input[name="mini_batch_size"]').value = "32";
        const rate = card.querySelector('input[name="learning_rate"]');
        rate.value = "";
        rate.placeholder = "network's";
      }
      networkList.append(card); // oldest first, as GET /api/networks lists them
    }
    card.dataset.status = network.status;
    dom.setText(card, "name", network.name || network.network_id);
    dom.setBadge(card.querySelector('.card-head [data-field="status"]'), network.status);
    dom.setText(card, "network_id", network.network_id);
    dom.setText(card, "architecture", fmt.architecture(network.architecture));
    dom.setText(card, "dataset_id", network.dataset_id || "");
    dom.setText(card, "accuracy", fmt.percent(network.accuracy));
    dom.setText(card, "version", network.current_version ? "v" + network.current_version : "—");
    dom.setText(card, "parameter_count", network.parameter_count == null ? "" : fmt.count(network.parameter_count));

    const run = activeRunOf(network.network_id);
    const liveBox = dom.field(card, "live");
    liveBox.hidden = !run;
    dom.field(liveBox, "progress").setAttribute("aria-label", `Training progress of ${network.name}`);
    if (run) {
      const extra = run.status === "running" && run.accuracy != null ? ` · accuracy ${fmt.percent(run.accuracy)}` : "";
      dom.setProgress(liveBox, run, extra);
    }
    lt.renderStopButton(card.querySelector('[data-action="stop"]'), run);
    card.querySelector('[data-action="train"]').disabled = Boolean(run);
  }

  function mergeNetwork(rest) {
    networks.set(rest.network_id, Object.assign(networks.get(rest.network_id) || {}, rest));
    names.set(rest.network_id, rest.name || names.get(rest.network_id));
    renderNetwork(networks.get(rest.network_id));
    updateEmptyState();
  }

  function forgetNetwork(networkId) {
    networks.delete(networkId);
    const card = networkCard(networkId);
    if (card) {
      const hadFocus = card.contains(document.activeElement);
      card.remove();
      if (hadFocus) document.getElementById("networks-heading").focus();
    }
    updateEmptyState();
  }

  live.on("network_created", (payload) => {
    lt.refreshStatus();
    if (networks.has(payload.network_id) || !onFirstPage.networks) return;
    // Networks are listed oldest first: a new one belongs on the last page, shown here only
    // while everything fits on this one.
    if (networks.size >= initial.networks_per_page) return;
    mergeNetwork({
      network_id: payload.network_id, name: payload.name, architecture: payload.architecture,
      kind: payload.architecture && typeof payload.architecture[0] === "number" ? "layer_sizes" : "layers",
      status: "created", accuracy: null, current_version: 0, dataset_id: "", parameter_count: null,
    });
    // The event carries no dataset or size: fetch the network once to complete the card.
    lt.api("GET", lt.path("api", "networks", payload.network_id)).then((found) => {
      if (networks.has(found.network_id)) mergeNetwork(found);
    }, () => {});
  });

  live.on("network_deleted", (payload) => {
    forgetNetwork(payload.network_id);
    lt.refreshStatus();
  });

  // -- experiments: the newest few, with their run counts ---------------------------------

  const experimentList = document.getElementById("experiment-list");
  const experimentsShown = Math.max(initial.experiments_shown, 6);

  function experimentItem(experimentId) {
    return experimentList.querySelector(`li[data-experiment-id="${CSS.escape(experimentId)}"]`);
  }

  function bump(experimentId, name, by) {
    const item = experimentId && experimentItem(experimentId);
    if (!item) return;
    const el = dom.field(item, name);
    el.textContent = String(Math.max(0, Number(el.textContent) + by));
  }

  live.on("experiment_created", (payload) => {
    if (experimentItem(payload.experiment_id)) return;
    const item = dom.cloneTemplate("experiment-template");
    item.dataset.experimentId = payload.experiment_id;
    const link = dom.field(item, "name");
    link.href = lt.path("experiments", payload.experiment_id);
    link.textContent = payload.name;
    experimentList.prepend(item);
    Array.from(experimentList.children).slice(experimentsShown).forEach((old) => old.remove());
  });

  live.on("experiment_deleted", (payload) => {
    const item = experimentItem(payload.experiment_id);
    if (item) item.remove();
  });

  function countRun(name, run) {
    if (name === "run_created") {
      bump(run.experiment_id, "runs", 1);
      bump(run.experiment_id, "active_runs", 1);
    } else if (lt.FINAL.has(run.status)) {
      bump(run.experiment_id, "active_runs", -1);
    }
  }

  // After a reconnect, networks may have been created, trained or deleted meanwhile.
  live.onConnect(async () => {
    try {
      const shown = Array.from(networks.keys());
      const found = await Promise.all(shown.map((id) =>
        lt.api("GET", lt.path("api", "networks", id)).catch((err) => (err.status === 404 ? null : undefined))));
      found.forEach((network, i) => {
        if (network === null) forgetNetwork(shown[i]);
        else if (network) mergeNetwork(network);
      });
      lt.refreshStatus();
    } catch (err) {
      lt.notice(`Could not refresh the page's data: ${err.message}`, "error");
    }
  });

  // -- user actions -------------------------------------------------------------------

  function updateLayerPlaceholder() {
    const option = createForm.elements.dataset_id.selectedOptions[0];
    if (!option) return;
    createForm.elements.layer_sizes.placeholder = option.dataset.task === "classification"
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
        lt.showError(createForm, "Layer sizes must be two or more whole numbers separated by commas, e.g. 64, 30, 10.",
          sizesInput);
        return;
      }
      body.layer_sizes = sizes;
    }
    const name = createForm.elements.name.value.trim();
    if (name) body.name = name;
    lt.busy(createForm, async () => {
      const network = await lt.api("POST", "/api/networks", body);
      if (onFirstPage.networks) mergeNetwork(network);
      sizesInput.value = "";
      createForm.elements.name.value = "";
      lt.notice(`Created ${network.name}.`);
      lt.refreshStatus();
    });
  });

  networkList.addEventListener("submit", (event) => {
    const form = event.target.closest('form[data-form="train"]');
    if (!form) return;
    event.preventDefault();
    const networkId = form.closest(".network").dataset.networkId;
    const body = {};
    try {
      const fields = [
        ["epochs", { label: "Epochs", integer: true, min: 1 }],
        ["mini_batch_size", { label: "Mini-batch size", integer: true, min: 1 }],
        ["learning_rate", { label: "Learning rate", min: 0, exclusiveMin: true }],
      ];
      for (const [name, options] of fields) {
        const value = lt.readNumber(form, name, options);
        if (value !== undefined) body[name] = value;
      }
    } catch (err) {
      lt.showError(form, err.message, err.input);
      return;
    }
    lt.busy(form, async () => {
      const started = await lt.api("POST", lt.path("api", "networks", networkId, "train"), body);
      const network = networks.get(networkId);
      if (network) network.status = "training";
      table.render(feed.add(started.run));
    }).then(() => {
      const network = networks.get(networkId);
      if (network) renderNetwork(network); // Train and Stop follow the network's run again
    });
  });

  async function deleteNetwork(card) {
    const networkId = card.dataset.networkId;
    const name = names.get(networkId) || networkId;
    if (!window.confirm(`Delete ${name}? Its versions and weights are removed; its runs stay in the list.`)) return;
    lt.busy(card.querySelector("form"), async () => {
      await lt.api("DELETE", lt.path("api", "networks", networkId));
      forgetNetwork(networkId);
      lt.notice(`Deleted ${name}.`);
      lt.refreshStatus();
    });
  }

  networkList.addEventListener("click", (event) => {
    const button = event.target.closest('button[data-action="delete"]');
    if (button) deleteNetwork(button.closest(".network"));
  });

  // -- start ----------------------------------------------------------------------------

  updateLayerPlaceholder();
  networks.forEach(renderNetwork);
  feed.runs.forEach((run) => table.render(run));
  updateEmptyState();
})();
