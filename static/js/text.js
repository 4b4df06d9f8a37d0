/*
 * Text datasets on the pages: the create form on the datasets list (templates/text_dataset_form.html)
 * and a text dataset's own parts of its page (templates/text_dataset.html).
 *
 * Create: the kind chosen shows its columns; samples come from a file or from the box, which is
 * sent as a file too (CSV with its header line, or one JSON object per line), with the options
 * set. The server's refusal (an empty text, a missing label, too few of a class...) is shown in
 * place; on success the new dataset's page opens. A dataset's page: a sample is added from
 * its fields, a network is created from a template (its page opens), and a trained language
 * model generates text from a prompt.
 */
(function () {
  "use strict";

  const lt = window.livetrain;
  const MAX_SEED = 2147483647;

  function setStatus(form, text) {
    lt.dom.setText(form, "status", text || "");
  }

  // -- the create form (datasets list) --------------------------------------------------------
  const createForm = document.getElementById("text-form");
  if (createForm) {
    const el = createForm.elements;
    const kind = el.kind;
    const showKind = () => {
      const option = kind.selectedOptions[0];
      lt.dom.setText(createForm, "columns", option.dataset.columns);
      el.samples.placeholder = option.dataset.example;
    };
    kind.addEventListener("change", showKind);
    showKind();
    const showSource = () => {
      const typed = createForm.querySelector("input[name=source]:checked").value === "typed";
      createForm.querySelector("[data-source=file]").hidden = typed;
      createForm.querySelector("[data-source=typed]").hidden = !typed;
    };
    createForm.querySelectorAll("input[name=source]").forEach((r) => r.addEventListener("change", showSource));
    el.vocabulary_id.addEventListener("change", () => {
      const level = el.vocabulary_id.selectedOptions[0].dataset.level;
      if (level) el.level.value = level;
    });

    createForm.addEventListener("submit", (event) => {
      event.preventDefault();
      lt.busy(createForm, async () => {
        const data = new FormData();
        data.append("kind", kind.value);
        const typed = createForm.querySelector("input[name=source]:checked").value === "typed";
        if (typed) {
          const textValue = el.samples.value.trim();
          if (!textValue) throw new lt.InputError("Type the samples: a CSV header line and rows, or JSON lines.", el.samples);
          const json = textValue.startsWith("{") || textValue.startsWith("[");
          data.append("file", new Blob([textValue + "\n"], { type: "text/plain" }), json ? "samples.jsonl" : "samples.csv");
        } else {
          const file = el.file.files[0];
          if (!file) throw new lt.InputError("Choose a file.", el.file);
          data.append("file", file, file.name);
        }
        const name = el.name.value.trim();
        if (name) data.append("name", name);
        ["vocabulary_id", "level"].forEach((field) => { if (el[field].value) data.append(field, el[field].value); });
        const numbers = {
          max_len: { label: "Longest sequence", integer: true, min: 4, max: 1024 },
          min_freq: { label: "Least frequency", integer: true, min: 1 },
          max_size: { label: "Largest vocabulary", integer: true, min: 6, max: 100000 },
          seed: { label: "Split seed", integer: true, min: 0, max: MAX_SEED },
        };
        Object.entries(numbers).forEach(([field, options]) => {
          const value = lt.readNumber(createForm, field, options);
          if (value !== undefined) data.append(field, String(value));
        });
        const split = ["split_train", "split_val", "split_test"].map((field) => {
          const value = lt.readNumber(createForm, field, { label: "A split fraction", min: 0, exclusiveMin: true, max: 1 });
          if (value === undefined) throw new lt.InputError("Give all three split fractions.", el[field]);
          return value;
        });
        if (Math.abs(split.reduce((a, b) => a + b, 0) - 1) > 1e-6) {
          throw new lt.InputError("The split fractions must add up to 1.", el.split_train);
        }
        data.append("split", split.join(","));
        setStatus(createForm, "Creating…");
        try {
          const dataset = await lt.api("POST", "/api/datasets", data);
          setStatus(createForm, `Created ${dataset.name}.`);
          window.location.assign(lt.path("datasets", dataset.id));
        } catch (err) {
          setStatus(createForm, "");
          // a field of the form is marked by its name; an option like split by its first input; a sample's
          // problem (its row and column) by the file or the box
          const field = err.detail && err.detail.field;
          if (field === "split") err.input = el.split_train;
          else if (!(field && el[field] instanceof Element) || field === "file") err.input = typed ? el.samples : el.file;
          throw err;
        }
      });
    });
  }

  // -- a text dataset's page -----------------------------------------------------------------
  const sampleForm = document.getElementById("sample-form");
  if (sampleForm) {
    const datasetId = sampleForm.dataset.datasetId;
    sampleForm.addEventListener("submit", (event) => {
      event.preventDefault();
      lt.busy(sampleForm, async () => {
        const sample = {};
        Array.from(sampleForm.elements).forEach((input) => {
          if (input.name && input.value.trim()) sample[input.name] = input.value;
        });
        const result = await lt.api("POST", `${lt.path("api", "datasets", datasetId)}/samples`, sample);
        setStatus(sampleForm, `Added: the dataset has ${result.n_rows} samples.`);
        window.location.reload();
      });
    });
  }

  const templateForm = document.getElementById("template-form");
  if (templateForm) {
    templateForm.addEventListener("submit", (event) => {
      event.preventDefault();
      lt.busy(templateForm, async () => {
        const chosen = templateForm.querySelector("input[name=template]:checked");
        const network = await lt.api("POST", "/api/networks", {
          dataset_id: templateForm.dataset.datasetId, template: chosen ? chosen.value : "auto",
        });
        setStatus(templateForm, `Created ${network.name}.`);
        window.location.assign(lt.path("networks", network.network_id));
      });
    });
  }

  const generateForm = document.getElementById("generate-text-form");
  if (generateForm) {
    const out = document.getElementById("generated-text");
    generateForm.addEventListener("submit", (event) => {
      event.preventDefault();
      lt.busy(generateForm, async () => {
        const networkId = generateForm.elements.network_id.value;
        if (!networkId) throw new lt.InputError("Create and train a network first.", generateForm.elements.network_id);
        const body = { prompt: generateForm.elements.prompt.value };
        const temperature = lt.readNumber(generateForm, "temperature", { label: "Temperature", min: 0, exclusiveMin: true, max: 100 });
        const maxTokens = lt.readNumber(generateForm, "max_tokens", { label: "At most tokens", integer: true, min: 1, max: 500 });
        if (temperature !== undefined) body.temperature = temperature;
        if (maxTokens !== undefined) body.max_tokens = maxTokens;
        setStatus(generateForm, "Generating…");
        const result = await lt.api("POST", `${lt.path("api", "networks", networkId)}/generate`, body);
        out.textContent = result.text;
        out.hidden = false;
        setStatus(generateForm, `${result.tokens} tokens from version ${result.version}, `
          + (result.stopped === "eos" ? "ended by <eos>." : "stopped at the limit."));
      });
    });
  }
}());
