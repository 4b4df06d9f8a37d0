/*
 * The vocabulary pages (templates/vocabularies.html, templates/vocabulary.html).
 *
 * The list: the create form sends the name, level and tokens and opens the new vocabulary;
 * vocabulary_created / vocabulary_deleted events reload the list. One vocabulary: tokens are
 * added (the form's text split at white space; a character vocabulary takes each character of
 * the text once), deleted one at a time (the server refuses specials and the tokens of
 * a vocabulary a dataset uses, and says so in place), and built from a text dataset; each change
 * reloads the page so the ids and counts shown are the server's.
 */
(function () {
  "use strict";

  const lt = window.livetrain;
  const page = document.body.dataset.page;
  const live = lt.connect();

  /** Tokens typed in a box: words split at white space; for a character vocabulary each character once
      (white space is added over the API, where it can be told apart). */
  function tokensOf(textValue, level) {
    if (level === "char") return Array.from(new Set(Array.from(textValue.replace(/\s+/g, ""))));
    return textValue.split(/\s+/).filter(Boolean);
  }

  function setStatus(form, text) {
    lt.dom.setText(form, "status", text || "");
  }

  if (page === "vocabularies") {
    const form = document.getElementById("vocabulary-form");
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      lt.busy(form, async () => {
        const body = {};
        const name = form.elements.name.value.trim();
        if (name) body.name = name;
        if (form.elements.level.value) body.level = form.elements.level.value;
        const tokens = tokensOf(form.elements.tokens.value, body.level);
        if (tokens.length) body.tokens = tokens;
        setStatus(form, "Creating…");
        const created = await lt.api("POST", "/api/vocabularies", body);
        setStatus(form, `Created ${created.name}.`);
        window.location.assign(lt.path("vocabularies", created.id));
      }).finally(() => setStatus(form, ""));
    });
    ["vocabulary_created", "vocabulary_deleted", "vocabulary_updated"].forEach((name) => {
      live.on(name, () => window.location.reload());
    });
    return;
  }

  // -- one vocabulary ---------------------------------------------------------------------
  const state = lt.embedded("vocabulary-state");
  const base = `/api/vocabularies/${encodeURIComponent(state.vocabulary_id)}`;
  const tokenError = document.getElementById("token-error");

  document.getElementById("token-rows").addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-action='delete-token']");
    if (!button) return;
    button.disabled = true;
    tokenError.hidden = true;
    try {
      await lt.api("DELETE", `${base}/tokens?token=${encodeURIComponent(button.dataset.token)}`);
      button.closest("tr").remove();
      lt.notice(`Deleted ${button.dataset.token}.`);
    } catch (err) {
      tokenError.textContent = err.message;
      tokenError.hidden = false;
      button.disabled = false;
    }
  });

  const addForm = document.getElementById("add-tokens-form");
  addForm.addEventListener("submit", (event) => {
    event.preventDefault();
    lt.busy(addForm, async () => {
      const tokens = tokensOf(addForm.elements.tokens.value, state.level);
      if (!tokens.length) throw new lt.InputError("Type at least one token.", addForm.elements.tokens);
      const result = await lt.api("POST", `${base}/tokens`, { tokens });
      setStatus(addForm, `Added ${result.added.length}` + (result.existing.length
        ? `; already there: ${result.existing.join(" ")}` : "") + ".");
      if (result.added.length) window.location.reload();
    });
  });

  const buildForm = document.getElementById("build-form");
  buildForm.addEventListener("submit", (event) => {
    event.preventDefault();
    lt.busy(buildForm, async () => {
      const body = { dataset_id: buildForm.elements.dataset_id.value };
      const minFreq = lt.readNumber(buildForm, "min_freq", { label: "Least frequency", integer: true, min: 1 });
      const maxSize = lt.readNumber(buildForm, "max_size", { label: "Largest size", integer: true, min: 6, max: 100000 });
      if (minFreq !== undefined) body.min_freq = minFreq;
      if (maxSize !== undefined) body.max_size = maxSize;
      setStatus(buildForm, "Building…");
      const result = await lt.api("POST", `${base}/build`, body);
      setStatus(buildForm, `Added ${result.added} of ${result.distinct_tokens} distinct tokens.`);
      window.location.reload();
    });
  });

  const remove = document.getElementById("delete-vocabulary");
  remove.addEventListener("click", async () => {
    if (!window.confirm("Delete this vocabulary?")) return;
    try {
      await lt.api("DELETE", base);
      window.location.assign("/vocabularies");
    } catch (err) {
      tokenError.textContent = err.message;
      tokenError.hidden = false;
    }
  });

  live.on("vocabulary_deleted", (payload) => {
    if (payload.vocabulary_id === state.vocabulary_id) window.location.assign("/vocabularies");
  });
}());
