/*
 * A registered model's page (templates/model.html): the promote, roll back and retrain buttons go
 * through the REST API (live.js `api()`), and the page reloads itself when the registry says this
 * model changed (an alias moved, feedback arrived, a retraining moved on), so what it shows is
 * always the server's.
 */
(function () {
  "use strict";

  const lt = window.livetrain;
  const { name } = lt.embedded("initial-state");
  const base = lt.path("api", "models", name);
  const error = document.getElementById("model-error");
  const RELOAD_ON = ["model_alias_moved", "model_version_registered", "model_feedback_received",
    "model_retrain_started", "model_retrain_evaluated", "model_promoted", "model_retrain_rejected",
    "model_retrain_failed"];

  async function send(button, method, url, body) {
    error.hidden = true;
    button.disabled = true;
    try {
      await lt.api(method, url, body);
      window.location.reload();
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
      button.disabled = false;
    }
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const action = button.dataset.action;
    if (action === "promote") {
      send(button, "PUT", `${base}/aliases/champion`,
        { version: Number(button.dataset.version), reason: "promoted from the model page" });
    } else if (action === "rollback") {
      send(button, "POST", `${base}/aliases/${encodeURIComponent(button.dataset.alias)}/rollback`,
        { reason: "rolled back from the model page" });
    } else if (action === "retrain") {
      send(button, "POST", `${base}/retrain`);
    }
  });

  const live = lt.connect([]);
  let reloading = null;
  RELOAD_ON.forEach((event) => live.on(event, (payload) => {
    if (payload && payload.model === name && !reloading) {
      reloading = setTimeout(() => window.location.reload(), 300); // a burst of events reloads once
    }
  }));
})();
