/*
 * One experiment (templates/experiment.html): the leaderboard, the overlay chart of its runs'
 * curves, the new-run form and the runs table, kept live from the experiment's room.
 *
 * The leaderboard is re-read from the server (GET /api/experiments/{id}/leaderboard) whenever
 * one of this experiment's runs reports, at most a few times a second, rather than re-ranked
 * here: the server's ranking is the one the API gives (ties to 12 significant digits, 1-1-3
 * ranks, which runs are unranked and why, the final scores a completed run adds on every
 * split), and one small request per burst of events keeps the page and the API from ever
 * disagreeing.
 *
 * The chart keeps every `training_update` of the experiment's runs it has seen, by run and
 * epoch: a run's history comes once from GET /api/runs/{id}/metrics, later steps from the
 * RunFeed (live.js), which applies each event once and fetches what a reconnect missed. A
 * point is stored under its epoch, so one arriving twice replaces itself, and a series is
 * always drawn from everything stored: nothing missing, nothing doubled.
 */
(function () {
  "use strict";

  const lt = window.livetrain;
  const { fmt, dom } = lt;

  const BOARD_MS = 300; // the leaderboard is fetched at most this often while runs report
  const MEDALS = { 1: "gold", 2: "silver", 3: "bronze" };
  const BOARD_EVENTS = new Set(["run_created", "training_started", "training_update", "training_complete",
    "training_error", "training_cancelled", "training_interrupted"]);
  const ENDED = new Set(["failed", "cancelled", "interrupted"]);
  const NAME_OK = /^[A-Za-z0-9_.-]+$/;

  const state = lt.embedded("experiment-state");
  const experimentId = state.experiment.experiment_id;
  const datasets = new Map(state.datasets.map((d) => [d.id, d]));
  const algorithms = new Map(state.algorithms.map((a) => [a.key, a]));
  const networks = new Map(state.networks.map((n) => [n.network_id, n]));
  const networkNames = new Map(state.networks.map((n) => [n.network_id, n.name]));
  let experimentGone = false;

  // -- names ------------------------------------------------------------------------------

  function place(rank) {
    const suffix = rank % 100 >= 10 && rank % 100 <= 20 ? "th" : { 1: "st", 2: "nd", 3: "rd" }[rank % 10] || "th";
    return `${rank}${suffix} place`;
  }

  function algorithmName(key, datasetId) {
    const algorithm = algorithms.get(key);
    if (!algorithm) return key || "—";
    const dataset = datasets.get(datasetId);
    return (dataset && algorithm.names[dataset.task]) || Object.values(algorithm.names)[0];
  }

  function trainerLabel(entry) {
    if (entry.network_id) return networkNames.get(entry.network_id) || entry.network_id;
    return algorithmName(entry.algorithm, entry.dataset_id);
  }

  function small(className, child) {
    const el = document.createElement("small");
    el.className = className;
    el.append(child);
    return el;
  }

  /** The "Algorithm / network" cell, as the template's `trainer_of` macro draws it. */
  function fillTrainer(cell, entry) {
    const key = [entry.network_id, entry.algorithm, trainerLabel(entry), networkNames.has(entry.network_id)].join("|");
    if (cell.dataset.key === key) return;
    cell.dataset.key = key;
    cell.replaceChildren();
    if (entry.network_id) {
      const name = networkNames.get(entry.network_id);
      if (name) {
        const link = document.createElement("a");
        link.href = lt.path("networks", entry.network_id);
        link.textContent = name;
        cell.append(link);
      } else {
        cell.append(`${entry.network_id} `, small("", "(deleted)"));
      }
      cell.append(" ", small("key", "network"));
    } else {
      const code = document.createElement("code");
      code.textContent = entry.algorithm;
      cell.append(algorithmName(entry.algorithm, entry.dataset_id), " ", small("key", code));
    }
  }

  function fillDataset(row, entry) {
    const link = dom.field(row, "dataset_link");
    const dataset = datasets.get(entry.dataset_id);
    link.href = entry.dataset_id ? lt.path("datasets", entry.dataset_id) : "#";
    link.textContent = dataset ? dataset.name : entry.dataset_id || "—";
  }

  function fillRun(row, entry) {
    row.dataset.runId = entry.run_id;
    dom.field(row, "run_link").href = lt.path("runs", entry.run_id);
    dom.setText(row, "run_id", entry.run_id);
    fillTrainer(dom.field(row, "trainer"), entry);
    fillDataset(row, entry);
    dom.setBadge(dom.field(row, "status"), entry.status);
  }

  // -- the runs table and the run feed ---------------------------------------------------------

  const live = lt.connect([{ experiment_id: experimentId }]);
  const table = new lt.RunTable(document.getElementById("runs-heading").parentElement,
    { names: networkNames, max: state.runs_per_page, insert: state.first_page });
  const oldestShown = Math.min(...state.runs.map((r) => r.created_at || 0));

  /** Whether a run first seen now belongs on this page of the runs table (newest first). */
  function belongsInTable(run) {
    if (!state.first_page) return false;
    return state.runs.length < state.runs_per_page || (run.created_at || 0) >= oldestShown;
  }

  const feed = new lt.RunFeed(live, {
    accept: (payload) => payload.experiment_id === experimentId,
    onEvent(name, payload, run) {
      if (name === "run_created" && !run.created_at) run.created_at = payload.ts;
      if (table.row(run.run_id) || (name === "run_created" && belongsInTable(run))) table.render(run);
      if (name === "training_update") addUpdate(payload);
      if (BOARD_EVENTS.has(name)) scheduleBoard();
    },
  });
  state.runs.forEach((run) => feed.add(run));
  // Live runs on the leaderboard but not on this page of the table: tracked from their first
  // event (seq 0), so the catch-up after every connect fetches whatever they have reported.
  [...state.leaderboard.entries, ...state.leaderboard.unranked].filter((e) => e.live).forEach((e) => {
    if (!feed.get(e.run_id)) {
      feed.add({ run_id: e.run_id, job_id: e.run_id, network_id: e.network_id, algorithm: e.algorithm,
        experiment_id: experimentId, dataset_id: e.dataset_id, status: e.status, created_at: e.created_at, last_seq: 0 });
    }
  });

  // -- the leaderboard ---------------------------------------------------------------------------

  const rankForm = document.getElementById("ranking");
  const metricSelect = document.getElementById("rank-metric");
  const splitSelect = document.getElementById("rank-split");
  const entriesBody = document.getElementById("leaderboard-entries");
  const unrankedBody = document.getElementById("unranked-entries");
  const summary = document.getElementById("leaderboard-summary");
  let board = state.leaderboard;
  const wanted = { metric: board.metric, split: board.split };
  let splitChosen = state.split_chosen;
  let boardTimer = null;
  let lastBoard = 0;
  let boardToken = 0;

  // The board lists the best BOARD_ROWS runs; `dataset_ids`, `network_runs` and `counts` describe all of them.

  /** The split every run is scored on while it trains: validation when all their datasets have one. */
  function preferredSplit(b) {
    const known = b.dataset_ids.map((id) => datasets.get(id)).filter(Boolean);
    return known.length && known.every((d) => d.n_val > 0) ? "val" : "test";
  }

  function metricGroups(b) {
    const known = b.dataset_ids.map((id) => datasets.get(id)).filter(Boolean);
    if (!known.length) return ["classification", "regression"];
    const groups = ["classification", "regression"].filter((task) => known.some((d) => d.task === task));
    if (known.some((d) => d.factorization)) groups.push("factorization");
    if (b.network_runs) groups.push("network");
    return groups;
  }

  function directionText(metric) {
    return `${state.directions[metric] === "max" ? "higher" : "lower"} is better`;
  }

  function metricOption(metric) {
    const option = document.createElement("option");
    option.value = metric;
    option.textContent = `${metric} (${directionText(metric)})`;
    return option;
  }

  /** Offer the metrics that apply to the experiment's runs (new datasets may bring new ones). */
  function renderMetricOptions(b) {
    const groups = metricGroups(b);
    const key = groups.join(" ");
    if (metricSelect.dataset.groups === key && metricSelect.value === b.metric) return;
    metricSelect.dataset.groups = key;
    const listed = new Set();
    const children = groups.map((group) => {
      const optgroup = document.createElement("optgroup");
      optgroup.label = state.group_labels[group];
      state.metric_groups[group].forEach((metric) => {
        listed.add(metric);
        optgroup.append(metricOption(metric));
      });
      return optgroup;
    });
    if (!listed.has(b.metric)) children.push(metricOption(b.metric));
    metricSelect.replaceChildren(...children);
    metricSelect.value = b.metric;
  }

  const metricGroup = new Map(Object.entries(state.metric_groups).flatMap(([group, metrics]) =>
    metrics.map((metric) => [metric, group])));

  /** Why a run has no value (the server's `unranked_reason` says the same on the first render). */
  function unrankedReason(entry, b) {
    const dataset = datasets.get(entry.dataset_id);
    const split = state.split_labels[b.split];
    if (entry.status === "queued") return "not started yet";
    if (ENDED.has(entry.status)) return `ended ${entry.status}`;
    if (b.split === "val" && dataset && dataset.n_val === 0) return `${dataset.name} has no validation split`;
    const group = metricGroup.get(b.metric);
    if (dataset && (group === "classification" || group === "regression") && group !== dataset.task) {
      return `${b.metric} is a ${group} metric; ${dataset.name} is ${dataset.task}`;
    }
    if (group === "network" && entry.algorithm !== "network") return `${b.metric} is reported by network runs only`;
    if (group === "factorization" && dataset && !dataset.factorization) return `${b.metric} needs factorization data`;
    if (entry.status === "running") return `no ${b.metric} on the ${split} split yet`;
    return `no ${b.metric} on the ${split} split`;
  }

  function fillLeader(row, entry, b) {
    const medal = MEDALS[entry.rank] || "";
    row.dataset.rank = String(entry.rank);
    row.dataset.medal = medal;
    const badge = dom.field(row, "medal");
    badge.dataset.medal = medal;
    badge.title = place(entry.rank);
    dom.setText(row, "rank", String(entry.rank));
    dom.setText(row, "place", place(entry.rank));
    fillRun(row, entry);
    const value = dom.field(row, "value");
    value.dataset.label = b.metric;
    dom.setText(row, "value", fmt.number(entry.value));
    dom.field(row, "live_note").hidden = !entry.live;
  }

  function fillUnranked(row, entry, b) {
    fillRun(row, entry);
    dom.setText(row, "reason", unrankedReason(entry, b));
  }

  /** Make `body`'s rows those of `items`, in order, reusing each run's row (focus stays put). */
  function syncRows(body, items, templateId, fill) {
    const existing = new Map(Array.from(body.children, (row) => [row.dataset.runId, row]));
    items.forEach((entry, i) => {
      const row = existing.get(entry.run_id) || dom.cloneTemplate(templateId);
      existing.delete(entry.run_id);
      fill(row, entry);
      if (body.children[i] !== row) body.insertBefore(row, body.children[i] || null);
    });
    existing.forEach((row) => row.remove());
  }

  function renderSummary(b) {
    dom.setText(summary, "metric", b.metric);
    dom.setText(summary, "split", state.split_labels[b.split]);
    dom.setText(summary, "direction", directionText(b.metric));
    let leader = dom.field(summary, "leader");
    if (!leader) {
      leader = document.createElement("span");
      leader.dataset.field = "leader";
      summary.append(" ", leader);
    }
    const best = b.entries[0];
    leader.hidden = !best;
    // the sentence is in a live region: it changes (and is read out) only when the leader does
    const text = best ? `Leader: ${trainerLabel(best)} (run ${best.run_id}) with ${fmt.number(best.value)}.` : "";
    if (leader.textContent !== text) leader.textContent = text;
  }

  function renderBoard(b) {
    board = b;
    syncRows(entriesBody, b.entries, "leader-template", (row, entry) => fillLeader(row, entry, b));
    syncRows(unrankedBody, b.unranked, "unranked-template", (row, entry) => fillUnranked(row, entry, b));
    document.getElementById("unranked").hidden = b.unranked.length === 0;
    const empty = document.getElementById("leaderboard-empty");
    empty.hidden = b.entries.length > 0;
    if (b.unranked.length) {
      empty.textContent = `No run has a value of ${b.metric} on the ${state.split_labels[b.split]} split yet.`;
    }
    document.querySelector('[data-field="metric_heading"]').textContent = b.metric;
    document.querySelector("#leaderboard caption").textContent =
      `Runs ranked by ${b.metric} on the ${state.split_labels[b.split]} split, best first`;
    renderSummary(b);
    renderMetricOptions(b);
    splitSelect.value = b.split;
    const more = document.getElementById("leaderboard-more");
    more.hidden = b.counts.ranked <= b.entries.length;
    more.textContent = `The best ${b.entries.length} of ${fmt.count(b.counts.ranked)} ranked runs.`;
    document.getElementById("experiment-runs").textContent = fmt.count(b.counts.ranked + b.counts.unranked);
    document.getElementById("experiment-active").textContent = fmt.count(b.counts.live);
    renderChart(b);
  }

  function scheduleBoard() {
    if (boardTimer || experimentGone) return;
    boardTimer = setTimeout(loadBoard, Math.max(0, BOARD_MS - (Date.now() - lastBoard)));
  }

  async function loadBoard() {
    clearTimeout(boardTimer);
    boardTimer = null;
    lastBoard = Date.now();
    const token = ++boardToken;
    const query = new URLSearchParams({ metric: wanted.metric, split: wanted.split, limit: state.board_rows });
    let next;
    try {
      next = await lt.api("GET", `${lt.path("api", "experiments", experimentId, "leaderboard")}?${query}`);
    } catch (err) {
      if (token === boardToken) lt.notice(`Could not update the leaderboard: ${err.message}`, "error");
      return;
    }
    if (token !== boardToken) return; // a newer request is on its way
    if (!splitChosen && preferredSplit(next) !== next.split) {
      // runs on a dataset without a validation split arrived (or the other way round)
      wanted.split = preferredSplit(next);
      loadBoard();
      return;
    }
    renderBoard(next);
  }

  function pickRanking(event) {
    if (event.target === splitSelect) splitChosen = true;
    wanted.metric = metricSelect.value;
    wanted.split = splitSelect.value;
    const url = new URL(window.location.href);
    url.searchParams.set("metric", wanted.metric);
    if (splitChosen) url.searchParams.set("split", wanted.split);
    window.history.replaceState(null, "", url);
    loadBoard();
  }

  metricSelect.addEventListener("change", pickRanking);
  splitSelect.addEventListener("change", pickRanking);
  rankForm.addEventListener("submit", (event) => {
    event.preventDefault(); // the selects apply at once; the button is for pages without JavaScript
    pickRanking(event);
  });
  rankForm.querySelector('[data-role="rank"]').hidden = true;

  // -- the overlay chart ----------------------------------------------------------------------------

  const canvas = document.getElementById("overlay-chart");
  const seriesList = document.getElementById("chart-series");
  const updates = new Map(); // run id -> Map(epoch -> training_update payload)
  const fetched = new Set(); // runs whose stored updates have been asked for
  const colours = new Map();
  const onChart = new Map(); // run id -> leaderboard entry drawn
  let chart = null;
  let chartMetric = null;

  function colourOf(runId) {
    if (!colours.has(runId)) colours.set(runId, lt.chartColour(colours.size));
    return colours.get(runId);
  }

  /** A step's value of `metric` on the held-out split: a scikit-learn step has every metric, a network epoch a few. */
  function stepValue(update, metric) {
    if (update.metrics) {
      const split = update.metrics[update.held_out_split] || {};
      return split[metric] == null ? null : split[metric];
    }
    if (metric === "accuracy") return update.accuracy;
    if (metric === "loss") return update.val_loss;
    if (metric === "r2") return update.r2 == null ? null : update.r2;
    return null;
  }

  function pointsOf(runId) {
    const steps = updates.get(runId);
    if (!steps) return [];
    return Array.from(steps.values())
      .map((u) => ({ x: u.epoch, y: stepValue(u, chartMetric) }))
      .filter((p) => p.y != null && Number.isFinite(Number(p.y)))
      .sort((a, b) => a.x - b.x);
  }

  function addUpdate(update) {
    if (!updates.has(update.run_id)) updates.set(update.run_id, new Map());
    updates.get(update.run_id).set(update.epoch, update);
    if (chart && onChart.has(update.run_id)) {
      chart.add(update.run_id, update.epoch, stepValue(update, chartMetric));
      renderSeriesList();
    }
  }

  async function fetchHistory(runId) {
    if (fetched.has(runId)) return;
    fetched.add(runId);
    try {
      const body = await lt.api("GET", lt.path("api", "runs", runId, "metrics"));
      body.metrics.forEach((update) => {
        if (!updates.has(runId)) updates.set(runId, new Map());
        updates.get(runId).set(update.epoch, update);
      });
    } catch (err) {
      fetched.delete(runId); // asked again the next time the chart is drawn
      console.warn("livetrain: could not fetch the metrics of run", runId, err.message);
      return;
    }
    // everything stored and everything received live meanwhile, drawn once
    if (chart && onChart.has(runId)) chart.set(runId, pointsOf(runId));
    renderSeriesList();
  }

  function makeChart(metric) {
    if (chart && chart.chart) chart.chart.destroy();
    onChart.clear();
    chartMetric = metric;
    chart = lt.lineChart(canvas, {
      title: `${metric} on the held-out split per step or epoch`, x: "step / epoch", series: [],
      axes: { y: { title: metric } },
    });
    document.querySelectorAll('#chart-caption [data-field="metric"]').forEach((el) => { el.textContent = metric; });
  }

  /** The leaderboard's top runs and every live one, each a series; others leave the chart. */
  function renderChart(b) {
    if (!chart || chartMetric !== b.metric) makeChart(b.metric);
    const top = b.entries.slice(0, state.chart_runs);
    const liveOnes = [...b.entries.slice(state.chart_runs), ...b.unranked].filter((e) => e.live);
    const shown = [...top, ...liveOnes];
    const ids = new Set(shown.map((e) => e.run_id));
    Array.from(onChart.keys()).filter((id) => !ids.has(id)).forEach((id) => {
      chart.removeSeries(id);
      onChart.delete(id);
    });
    shown.forEach((entry) => {
      if (!onChart.has(entry.run_id)) {
        chart.addSeries({ key: entry.run_id, label: `${trainerLabel(entry)} (${entry.run_id.slice(0, 6)})`,
          color: colourOf(entry.run_id) });
        chart.set(entry.run_id, pointsOf(entry.run_id));
        fetchHistory(entry.run_id);
      }
      onChart.set(entry.run_id, entry);
    });
    renderSeriesList();
  }

  /** The chart in words: one item per series, with its point count and latest value. */
  function renderSeriesList() {
    const items = Array.from(onChart.values(), (entry) => {
      const points = pointsOf(entry.run_id);
      const item = document.createElement("li");
      item.dataset.runId = entry.run_id;
      item.dataset.points = String(points.length);
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = colourOf(entry.run_id);
      const name = document.createElement("span");
      name.className = "series-name";
      name.textContent = `${entry.rank ? `#${entry.rank} ` : ""}${trainerLabel(entry)} (${entry.run_id.slice(0, 6)})`;
      const facts = document.createElement("span");
      facts.className = "series-facts";
      const last = points[points.length - 1];
      facts.textContent = points.length
        ? `${points.length} point${points.length === 1 ? "" : "s"} · latest ${fmt.number(last.y)} at ${last.x}`
        : (fetched.has(entry.run_id) && updates.has(entry.run_id)
          ? `no per-step ${chartMetric}` : "no steps yet");
      item.append(swatch, name, " ", facts);
      return item;
    });
    seriesList.replaceChildren(...items);
  }

  // -- the new-run form ------------------------------------------------------------------------------

  const form = document.getElementById("new-run");
  const trainerSelect = form.elements.trainer;
  const datasetSelect = form.elements.dataset_id;
  const networkGroup = document.getElementById("network-options");
  const stepsInput = form.elements.steps;
  const stepsHint = document.getElementById("run-steps-hint");
  const STEPS_HINT = stepsHint.textContent;
  let algorithmDataset = datasetSelect.value; // the dataset picked for algorithms, kept while a network is chosen

  function chosen() {
    const value = trainerSelect.value;
    if (value.startsWith("network:")) {
      const network = networks.get(value.slice("network:".length));
      return { key: "network", network, algorithm: null };
    }
    return { key: value, network: null, algorithm: algorithms.get(value) };
  }

  function activeFieldset() {
    return form.querySelector(`fieldset[data-algorithm="${CSS.escape(chosen().key)}"]`);
  }

  function canLearn(algorithm, dataset) {
    if (!algorithm.tasks.includes(dataset.task)) return false;
    // several regression targets at once (the factorization data) need a multi-output algorithm
    return !(dataset.task === "regression" && dataset.n_outputs > 1 && !algorithm.multi_output);
  }

  function datasetOption(dataset) {
    const option = document.createElement("option");
    option.value = dataset.id;
    option.textContent = `${dataset.name} (${dataset.task})`;
    return option;
  }

  function updateForm() {
    const choice = chosen();
    form.querySelectorAll("fieldset[data-algorithm]").forEach((fieldset) => {
      const on = fieldset.dataset.algorithm === choice.key;
      fieldset.hidden = !on;
      fieldset.disabled = !on;
    });
    const options = Array.from(datasetSelect.options);
    let note = "";
    if (choice.network) {
      options.forEach((option) => { option.disabled = false; option.hidden = false; });
      if (!datasets.has(choice.network.dataset_id)) {
        datasetSelect.append(datasetOption({ id: choice.network.dataset_id, name: choice.network.dataset_id, task: "?" }));
      }
      datasetSelect.value = choice.network.dataset_id;
      datasetSelect.disabled = true;
      note = " · the network's own dataset";
      const own = { mini_batch_size: choice.network.mini_batch_size, learning_rate: choice.network.learning_rate };
      Object.entries(own).forEach(([name, value]) => {
        const input = activeFieldset().querySelector(`.param[data-param="${name}"] input`);
        if (input) input.placeholder = value == null ? "the network's" : `${value} (the network's)`;
      });
      const optimizer = activeFieldset().querySelector('.param[data-param="optimizer"] select');
      if (optimizer) {
        optimizer.options[0].textContent = `the network's own (${choice.network.optimizer || "sgd"})`;
        // a layer_sizes network always trains with plain SGD (docs/api.md)
        optimizer.disabled = choice.network.kind === "layer_sizes";
        if (optimizer.disabled) optimizer.value = "";
      }
    } else if (choice.algorithm) {
      if (datasetSelect.disabled) datasetSelect.value = algorithmDataset; // back from a network
      datasetSelect.disabled = false;
      options.forEach((option) => {
        const dataset = datasets.get(option.value);
        const ok = Boolean(dataset) && canLearn(choice.algorithm, dataset);
        option.disabled = !ok;
        option.hidden = !ok;
      });
      const current = datasetSelect.selectedOptions[0];
      if (!current || current.disabled) {
        const keep = options.find((o) => o.value === algorithmDataset && !o.disabled);
        const first = keep || options.find((o) => !o.disabled);
        if (first) datasetSelect.value = first.value;
      }
      if (options.some((o) => o.disabled)) note = ` · only datasets ${choice.algorithm.key} can learn are listed`;
    }
    const dataset = datasets.get(datasetSelect.value);
    const task = dataset ? dataset.task : "classification";
    const fieldset = activeFieldset();
    if (fieldset) {
      fieldset.querySelectorAll("[data-tasks]").forEach((el) => {
        const tasks = el.dataset.tasks ? el.dataset.tasks.split(" ") : null;
        el.hidden = Boolean(tasks) && !tasks.includes(task);
      });
      if (choice.algorithm) dom.setText(fieldset, "algorithm_name", algorithmName(choice.key, datasetSelect.value));
      if (choice.network) dom.setText(fieldset, "algorithm_name", `Network ${choice.network.name}`);
    }
    // an MLP steps once per epoch and a network once per epoch: `steps` does not apply to them
    const perEpoch = Boolean(choice.network) || (choice.algorithm && choice.algorithm.strategy === "epochs");
    stepsInput.disabled = perEpoch;
    stepsHint.textContent = perEpoch ? "one step per epoch: set epochs below." : STEPS_HINT;
    document.getElementById("run-dataset-hint").textContent = dataset
      ? `${dataset.task} · ${fmt.count(dataset.n_train)} train / ${fmt.count(dataset.n_val)} validation / `
        + `${fmt.count(dataset.n_test)} test rows${note}`
      : note.replace(/^ · /, "");
  }

  trainerSelect.addEventListener("change", updateForm);
  datasetSelect.addEventListener("change", () => {
    if (!chosen().network) algorithmDataset = datasetSelect.value;
    updateForm();
  });

  /** One parameter's value, checked against the catalog (undefined: leave it to the default). */
  function readParam(spec, input, own) {
    const label = spec.name;
    if (spec.type === "int" || spec.type === "float") {
      const value = lt.readNumber(form, input.name, { label, integer: spec.type === "int", min: spec.min, max: spec.max });
      if (value !== undefined) return value;
      return spec.nullable && !own ? null : undefined;
    }
    if (spec.type === "bool") return input.checked;
    if (spec.type === "choice") {
      if (!input.value) return undefined; // the network's own
      const match = spec.choices.find((c) => String(c) === input.value);
      if (match === undefined) throw new lt.InputError(`${label} must be one of ${spec.choices.join(", ")}.`, input);
      return match;
    }
    if (spec.type === "int_list") {
      const text = input.value.trim();
      const items = text ? text.split(/[\s,]+/).filter(Boolean).map(Number) : [];
      const fits = items.length >= spec.min_items && items.length <= spec.max_items
        && items.every((n) => Number.isInteger(n) && n >= spec.min && n <= spec.max);
      if (!fits) {
        throw new lt.InputError(`${label} must be ${spec.min_items} to ${spec.max_items} whole numbers, each from `
          + `${spec.min} to ${spec.max}, separated by commas (e.g. ${spec.default.join(", ")}).`, input);
      }
      return items;
    }
    return undefined;
  }

  function readParams(fieldset, specs) {
    const out = {};
    fieldset.querySelectorAll(".param").forEach((el) => {
      if (el.hidden) return;
      const spec = specs[Number(el.dataset.index)];
      const input = el.querySelector("input, select");
      if (!spec || !input || input.disabled) return;
      const value = readParam(spec, input, el.hasAttribute("data-own"));
      if (value !== undefined) out[spec.name] = value;
    });
    return out;
  }

  function readRunForm() {
    const choice = chosen();
    const body = {};
    const seed = lt.readNumber(form, "seed", { label: "Seed", integer: true, min: 0, max: 2147483647 });
    if (seed !== undefined) body.seed = seed;
    if (choice.network) {
      body.network_id = choice.network.network_id;
      Object.assign(body, readParams(activeFieldset(), state.network_runs.params));
      return body;
    }
    if (!choice.algorithm) throw new lt.InputError("Choose an algorithm or a network.", trainerSelect);
    body.algorithm = choice.key;
    body.dataset_id = datasetSelect.value;
    if (!body.dataset_id) throw new lt.InputError(`No dataset here can be learned by ${choice.key}.`, datasetSelect);
    if (!stepsInput.disabled) {
      const steps = lt.readNumber(form, "steps", { label: "Steps", integer: true, min: 1, max: 100 });
      if (steps !== undefined) body.steps = steps;
    }
    body.params = readParams(activeFieldset(), choice.algorithm.params);
    return body;
  }

  /** The input a server refusal names (`detail.field`: `params.C`, `seed`, `mini_batch_size`...). */
  function inputFor(err) {
    const field = err.detail && err.detail.field;
    if (!field) return null;
    const name = field.startsWith("params.") ? field.slice("params.".length) : field;
    if (name === "seed" || name === "steps") return form.elements[name];
    if (name === "dataset_id" || name === "dataset") return datasetSelect;
    if (name === "algorithm" || name === "network_id") return trainerSelect;
    if (!NAME_OK.test(name)) return null;
    const param = Array.from(activeFieldset().querySelectorAll(`.param[data-param="${name}"]`)).find((p) => !p.hidden);
    return param ? param.querySelector("input, select") : null;
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (experimentGone) {
      lt.showError(form, "This experiment has been deleted.");
      return;
    }
    let body;
    try {
      body = readRunForm();
    } catch (err) {
      lt.showError(form, err.message, err.input);
      return;
    }
    lt.busy(form, async () => {
      let started;
      try {
        started = await lt.api("POST", lt.path("api", "experiments", experimentId, "runs"), body);
      } catch (err) {
        err.input = err.input || inputFor(err);
        throw err;
      }
      const run = feed.add(started.run);
      table.render(run);
      loadBoard(); // the new run shows on the leaderboard at once (unranked until it reports)
      const what = run.network_id ? networkNames.get(run.network_id) || run.network_id
        : algorithmName(run.algorithm, run.dataset_id);
      lt.notice(`Started ${what} on ${run.dataset_id}: run ${run.run_id}.`);
    });
  });

  // -- networks and datasets created or deleted elsewhere ---------------------------------------------

  function networkFacts(network) {
    return {
      network_id: network.network_id, name: network.name, dataset_id: network.dataset_id, kind: network.kind,
      learning_rate: network.spec ? network.spec.learning_rate : null,
      optimizer: network.spec ? network.spec.optimizer : null,
      mini_batch_size: network.kind === "layer_sizes" ? 10 : 32,
    };
  }

  function networkPlaceholder() {
    const has = networkGroup.querySelector("option:not([data-placeholder])");
    const placeholder = networkGroup.querySelector("option[data-placeholder]");
    if (has && placeholder) placeholder.remove();
    if (!has && !placeholder) {
      const option = document.createElement("option");
      option.value = "";
      option.disabled = true;
      option.dataset.placeholder = "";
      option.textContent = "none yet: create one on the dashboard";
      networkGroup.append(option);
    }
  }

  live.on("network_created", async (payload) => {
    let network;
    try {
      network = await lt.api("GET", lt.path("api", "networks", payload.network_id));
    } catch (err) {
      return; // deleted again already
    }
    const facts = networkFacts(network);
    networks.set(facts.network_id, facts);
    networkNames.set(facts.network_id, facts.name);
    if (!trainerSelect.querySelector(`option[value="network:${CSS.escape(facts.network_id)}"]`)) {
      const option = document.createElement("option");
      option.value = `network:${facts.network_id}`;
      option.textContent = `${facts.name} · ${facts.dataset_id}`;
      networkGroup.append(option);
      networkPlaceholder();
    }
  });

  live.on("network_deleted", (payload) => {
    const wasChosen = trainerSelect.value === `network:${payload.network_id}`;
    networks.delete(payload.network_id);
    networkNames.delete(payload.network_id);
    const option = trainerSelect.querySelector(`option[value="network:${CSS.escape(payload.network_id)}"]`);
    if (option) option.remove();
    networkPlaceholder();
    if (wasChosen) {
      trainerSelect.selectedIndex = 0;
      datasetSelect.value = algorithmDataset;
      updateForm();
    }
    renderBoard(board); // its runs now say "(deleted)"
  });

  live.on("dataset_created", async (payload) => {
    let detail;
    try {
      detail = await lt.api("GET", lt.path("api", "datasets", payload.dataset_id));
    } catch (err) {
      return;
    }
    const meta = detail.meta || {};
    datasets.set(detail.id, {
      id: detail.id, name: detail.name, task: detail.task, n_train: detail.n_train, n_val: detail.n_val,
      n_test: detail.n_test, n_outputs: meta.n_outputs || 1, factorization: meta.generator === "factorization",
    });
    if (!datasetSelect.querySelector(`option[value="${CSS.escape(detail.id)}"]`)) {
      datasetSelect.append(datasetOption(datasets.get(detail.id)));
    }
    updateForm();
  });

  live.on("dataset_deleted", (payload) => {
    const option = datasetSelect.querySelector(`option[value="${CSS.escape(payload.dataset_id)}"]`);
    if (option && !chosen().network) {
      option.remove();
      updateForm();
    }
  });

  live.on("experiment_deleted", (payload) => {
    if (payload.experiment_id !== experimentId) return;
    experimentGone = true;
    clearTimeout(boardTimer);
    lt.notice("This experiment has been deleted.", "error");
    form.querySelector('button[type="submit"]').disabled = true;
  });

  // After a reconnect the ranking may have moved on; the feed catches the runs up itself.
  live.onConnect(scheduleBoard);

  // -- start ----------------------------------------------------------------------------------------

  const created = document.getElementById("experiment-created");
  if (state.experiment.created_at) created.textContent = fmt.localTime(state.experiment.created_at);
  feed.runs.forEach((run) => {
    if (table.row(run.run_id)) table.render(run);
  });
  updateForm();
  renderBoard(board);
})();
