/*
 * The experiments list (templates/experiments.html): create and delete experiments, and keep
 * the list live. `experiment_created` / `experiment_deleted` add and remove rows (a new one
 * goes on the first page, the list being newest first). The run counts follow the runs'
 * events: a run created, or one ending, makes the page fetch its experiments once more
 * (GET /api/experiments, at most a few times a second), so the counts are the server's and
 * stay right across reconnects, whatever was missed.
 */
(function () {
  "use strict";

  const lt = window.livetrain;
  const { fmt, dom } = lt;

  const NAME = /^[A-Za-z0-9][A-Za-z0-9 _.-]{0,99}$/;
  const MAX_DESCRIPTION = 2000;
  const REFRESH_MS = 400; // at most this often while runs start and end in bursts
  const COUNT_EVENTS = ["run_created", "training_complete", "training_error", "training_cancelled",
    "training_interrupted"];

  const initial = lt.embedded("initial-state");
  const rows = document.getElementById("experiment-rows");
  const empty = document.getElementById("experiments-empty");
  const form = document.getElementById("create-experiment");
  const heading = document.getElementById("experiments-heading");
  const shown = new Map(initial.experiments.map((e) => [e.experiment_id, e]));

  const live = lt.connect(initial.experiments.map((e) => ({ experiment_id: e.experiment_id })));

  function rowOf(id) {
    return rows.querySelector(`tr[data-experiment-id="${CSS.escape(id)}"]`);
  }

  function renderActive(cell, count) {
    cell.replaceChildren();
    if (count) {
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.dataset.status = "running";
      badge.textContent = `${count} active`;
      cell.append(badge);
    } else {
      const zero = document.createElement("span");
      zero.className = "muted";
      zero.textContent = "0";
      cell.append(zero);
    }
  }

  /** Draw an experiment's row (a new one at the top: the list is newest first). */
  function render(experiment, position) {
    const id = experiment.experiment_id;
    shown.set(id, Object.assign(shown.get(id) || {}, experiment));
    let row = rowOf(id);
    if (!row) {
      row = dom.cloneTemplate("experiment-template");
      row.dataset.experimentId = id;
      dom.field(row, "link").href = lt.path("experiments", id);
      const at = position == null ? rows.firstElementChild : rows.children[position] || null;
      rows.insertBefore(row, at);
      live.subscribe({ experiment_id: id });
    }
    dom.setText(row, "name", experiment.name);
    dom.setText(row, "experiment_id", id);
    dom.field(row, "default").hidden = !experiment.is_default;
    dom.setText(row, "description", experiment.description || "");
    dom.setText(row, "runs", fmt.count(experiment.runs || 0));
    const active = dom.field(row, "active_runs");
    if (active.dataset.count !== String(experiment.active_runs || 0)) {
      active.dataset.count = String(experiment.active_runs || 0);
      renderActive(active, experiment.active_runs || 0);
    }
    dom.field(row, "delete").setAttribute("aria-label", `Delete experiment ${experiment.name}`);
    const time = dom.field(row, "created_at");
    if (experiment.created_at) {
      time.dateTime = new Date(experiment.created_at * 1000).toISOString();
      dom.setText(row, "created_at", fmt.localTime(experiment.created_at));
    }
    empty.hidden = rows.children.length > 0;
    return row;
  }

  function forget(id) {
    shown.delete(id);
    live.unsubscribe({ experiment_id: id });
    const row = rowOf(id);
    if (row) {
      const hadFocus = row.contains(document.activeElement);
      row.remove();
      if (hadFocus) heading.focus();
    }
    empty.hidden = rows.children.length > 0;
  }

  // -- the page's experiments from the server: counts, and on the first page the list itself --

  let refreshTimer = null;
  let lastRefresh = 0;

  function scheduleRefresh() {
    if (refreshTimer) return;
    const wait = Math.max(0, REFRESH_MS - (Date.now() - lastRefresh));
    refreshTimer = setTimeout(refresh, wait);
  }

  async function refresh() {
    refreshTimer = null;
    lastRefresh = Date.now();
    let body;
    try {
      body = await lt.api("GET", `/api/experiments?limit=${initial.per_page}&offset=${initial.offset}`);
    } catch (err) {
      console.warn("livetrain: could not refresh the experiments:", err.message);
      return;
    }
    if (initial.first_page) {
      // the first page is the newest experiments: exactly what the server lists now, in its order
      const ids = new Set(body.experiments.map((e) => e.experiment_id));
      Array.from(shown.keys()).filter((id) => !ids.has(id)).forEach(forget);
      body.experiments.forEach((e, i) => {
        const row = render(e, i);
        if (rows.children[i] !== row) rows.insertBefore(row, rows.children[i] || null);
      });
    } else {
      // a later page keeps its rows (the list shifts as experiments come): only their counts change
      body.experiments.filter((e) => shown.has(e.experiment_id)).forEach((e) => render(e));
    }
  }

  live.on("experiment_created", (payload) => {
    if (initial.first_page && !shown.has(payload.experiment_id)) scheduleRefresh();
  });
  live.on("experiment_deleted", (payload) => {
    forget(payload.experiment_id);
    if (initial.first_page) scheduleRefresh(); // the next one moves up from the second page
  });
  COUNT_EVENTS.forEach((name) => live.on(name, (payload) => {
    if (payload && shown.has(payload.experiment_id)) scheduleRefresh();
  }));
  live.onConnect(scheduleRefresh); // whatever happened while this page was not connected

  // -- create -----------------------------------------------------------------------------

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const nameInput = form.elements.name;
    const descriptionInput = form.elements.description;
    const name = nameInput.value.trim();
    const description = descriptionInput.value.trim();
    if (name && (!NAME.test(name) || name.includes(".."))) {
      lt.showError(form, "The name must be 1–100 letters, digits, spaces, '_', '.' or '-', starting with a "
        + "letter or digit (no slashes or '..').", nameInput);
      return;
    }
    if (description.length > MAX_DESCRIPTION) {
      lt.showError(form, `The description is ${fmt.count(description.length)} characters; at most `
        + `${fmt.count(MAX_DESCRIPTION)} fit.`, descriptionInput);
      return;
    }
    const body = {};
    if (name) body.name = name;
    if (description) body.description = description;
    lt.busy(form, async () => {
      let created;
      try {
        created = await lt.api("POST", "/api/experiments", body);
      } catch (err) {
        if (err.detail && err.detail.field === "description") err.input = descriptionInput;
        else if (err.detail && err.detail.field === "name") err.input = nameInput;
        throw err;
      }
      if (initial.first_page) render(created, 0);
      nameInput.value = "";
      descriptionInput.value = "";
      lt.notice(initial.first_page ? `Created ${created.name}.` : `Created ${created.name}: it is on the first page.`,
        "done");
    });
  });

  // -- delete -----------------------------------------------------------------------------

  rows.addEventListener("submit", (event) => {
    const deleteForm = event.target.closest('form[data-form="delete"]');
    if (!deleteForm) return;
    event.preventDefault();
    const id = deleteForm.closest("tr").dataset.experimentId;
    const experiment = shown.get(id) || { name: id, runs: 0 };
    const runs = experiment.runs ? ` and its ${fmt.count(experiment.runs)} run${experiment.runs === 1 ? "" : "s"}` : "";
    if (!window.confirm(`Delete ${experiment.name}${runs}? Active runs are stopped first. Networks stay.`)) return;
    lt.busy(deleteForm, async () => {
      const result = await lt.api("DELETE", lt.path("api", "experiments", id));
      forget(id);
      lt.notice(`Deleted ${experiment.name} (${fmt.count(result.deleted_runs)} run${result.deleted_runs === 1 ? "" : "s"}).`);
    });
  });

  // -- start: local times ------------------------------------------------------------------

  shown.forEach((experiment) => render(experiment));
})();
