/*
 * One dataset (templates/dataset.html): its runs follow their events (a new run on this
 * dataset shows up on the first page of its runs), the networks bound to it come and go with
 * network_created / network_deleted, and Delete asks first and shows the server's refusal
 * (a built-in, a dataset in use) in place.
 */
(function () {
  "use strict";

  const lt = window.livetrain;
  const { fmt, dom } = lt;

  const state = lt.embedded("dataset-state");
  const datasetId = state.dataset_id;
  const names = new Map(state.networks.map((n) => [n.network_id, n.name]));
  const networkList = document.getElementById("network-list");
  const actions = document.getElementById("dataset-actions");

  const live = lt.connect();

  // -- runs -----------------------------------------------------------------------------

  const table = new lt.RunTable(document.getElementById("runs-heading").parentElement,
    { names, max: state.per_page, insert: state.first_page });

  /** Follow an active run's room too, so its events arrive when the server does not broadcast them. */
  const feed = new lt.RunFeed(live, {
    accept: (payload) => state.first_page && payload.dataset_id === datasetId,
    onEvent(name, payload, run) {
      if (name === "run_created" && !run.created_at) run.created_at = payload.ts;
      table.render(run);
      networkRunChanged(name, run);
    },
  });
  state.runs.forEach((run) => feed.add(run)); // RunFeed joins the rooms of those still going

  // -- networks bound to it ------------------------------------------------------------

  function networkItem(networkId) {
    return networkList.querySelector(`li[data-network-id="${CSS.escape(networkId)}"]`);
  }

  function updateNetworksEmpty() {
    document.getElementById("networks-empty").hidden = networkList.children.length > 0;
  }

  function showNetwork(network) {
    let item = networkItem(network.network_id);
    if (!item) {
      item = dom.cloneTemplate("network-template");
      item.dataset.networkId = network.network_id;
      dom.field(item, "link").href = lt.path("networks", network.network_id);
      networkList.append(item); // oldest first, as the server lists them
    }
    names.set(network.network_id, network.name);
    dom.setText(item, "name", network.name || network.network_id);
    dom.setText(item, "architecture", fmt.architecture(network.architecture));
    dom.setBadge(dom.field(item, "status"), network.status);
    updateNetworksEmpty();
  }

  function forgetNetwork(networkId) {
    const item = networkItem(networkId);
    if (!item) return;
    const hadFocus = item.contains(document.activeElement);
    item.remove();
    if (hadFocus) document.getElementById("networks-heading").focus();
    updateNetworksEmpty();
  }

  live.on("network_created", async (payload) => {
    // The event does not say which dataset the network is bound to: ask once.
    try {
      const network = await lt.api("GET", lt.path("api", "networks", payload.network_id));
      if (network.dataset_id === datasetId) showNetwork(network);
    } catch (err) {
      if (err.status !== 404) console.warn("livetrain: could not fetch network", payload.network_id, err.message);
    }
  });
  live.on("network_deleted", (payload) => forgetNetwork(payload.network_id));

  /** A bound network's status follows its runs: training while one is active, then as the server says. */
  async function networkRunChanged(name, run) {
    const item = run.network_id && networkItem(run.network_id);
    if (!item) return;
    if (name === "run_created" || name === "training_started") {
      dom.setBadge(dom.field(item, "status"), "training");
    } else if (lt.FINAL.has(run.status) && name !== "training_progress" && name !== "training_update") {
      try {
        showNetwork(await lt.api("GET", lt.path("api", "networks", run.network_id)));
      } catch (err) {
        if (err.status !== 404) console.warn("livetrain: could not fetch network", run.network_id, err.message);
      }
    }
  }

  // -- this dataset deleted --------------------------------------------------------------

  function markDeleted() {
    document.getElementById("deleted-note").hidden = false;
    const button = actions.querySelector('[data-action="delete"]');
    button.hidden = true;
  }

  live.on("dataset_deleted", (payload) => {
    if (payload.dataset_id === datasetId) markDeleted();
  });

  // While the connection was down, networks may have come or gone and the dataset itself too.
  live.onConnect(async () => {
    try {
      const [datasets, networks] = await Promise.all([lt.api("GET", "/api/datasets"), lt.api("GET", "/api/networks")]);
      if (!datasets.datasets.some((d) => d.id === datasetId)) markDeleted();
      const bound = networks.networks.filter((n) => n.dataset_id === datasetId);
      const ids = new Set(bound.map((n) => n.network_id));
      Array.from(networkList.children).forEach((item) => {
        if (!ids.has(item.dataset.networkId)) forgetNetwork(item.dataset.networkId);
      });
      bound.forEach(showNetwork);
    } catch (err) {
      lt.notice(`Could not refresh the page's data: ${err.message}`, "error");
    }
  });

  // -- delete --------------------------------------------------------------------------------

  actions.addEventListener("submit", (event) => {
    event.preventDefault();
    const question = `Delete the dataset ${state.name}? Its files are removed; runs that trained on it stay as history.`;
    if (!window.confirm(question)) return;
    lt.busy(actions, async () => {
      await lt.api("DELETE", lt.path("api", "datasets", datasetId));
      window.location.assign("/datasets");
    });
  });

  // -- start -------------------------------------------------------------------------------------

  document.querySelectorAll("time[data-local]").forEach((time) => {
    const ts = Date.parse(time.dateTime) / 1000;
    if (ts) time.textContent = fmt.localTime(ts);
  });
  feed.runs.forEach((run) => table.render(run));
})();
