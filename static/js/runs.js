/*
 * The runs list (templates/runs.html): its rows follow their runs' events, and on the first
 * page a new run that matches the filters is added at the top.
 */
(function () {
  "use strict";

  const lt = window.livetrain;
  const initial = lt.embedded("initial-state");
  const filters = initial.filters;

  function matches(payload) {
    for (const key of ["network_id", "experiment_id", "dataset_id", "algorithm"]) {
      if (filters[key] && payload[key] !== filters[key]) return false;
    }
    // a new run is queued: it matches a status filter only when that filter is "queued" or none
    return !filters.statuses || filters.statuses.includes("queued");
  }

  const live = lt.connect();
  const table = new lt.RunTable(document.getElementById("runs-heading").parentElement,
    { max: initial.per_page, insert: initial.first_page });
  const feed = new lt.RunFeed(live, {
    accept: (payload) => initial.first_page && matches(payload),
    onEvent: (name, payload, run) => table.render(run),
  });
  initial.runs.forEach((run) => feed.add(run));
})();
