/*
 * The datasets list (templates/datasets.html).
 *
 * The list: rows come and go with `dataset_created` / `dataset_deleted`. After each such
 * event (and after every (re)connect, which may have missed some) the page fetches the list
 * once and shows the slice it covers, in the server's order (built-ins first, then by id),
 * so a page never shows a row that belongs on another one.
 *
 * The upload form reads the chosen file's header line in the browser to offer its columns
 * as the target, checks the file and the fields before sending, shows upload progress, and
 * shows the server's message in place when it refuses the file. The generate form shows the
 * chosen generator's parameters and checks them against their ranges.
 */
(function () {
  "use strict";

  const lt = window.livetrain;
  const { fmt, dom } = lt;

  const initial = lt.embedded("datasets-state");
  const rows = document.getElementById("dataset-rows");
  const uploadForm = document.getElementById("upload-form");
  const generateForm = document.getElementById("generate-form");
  const NAME = /^[A-Za-z0-9][A-Za-z0-9 _.-]{0,99}$/;
  const HEADER_BYTES = 64 * 1024; // a header line longer than this is read by the server only
  const MAX_SEED = 2147483647;

  function byteSize(n) {
    if (n >= 1048576) return `${fmt.number(n / 1048576, 3)} MiB`;
    if (n >= 1024) return `${fmt.number(n / 1024, 3)} KiB`;
    return `${n} bytes`;
  }

  function checkName(form) {
    const input = form.elements.name;
    const name = input.value.trim();
    if (name && (!NAME.test(name) || name.includes(".."))) {
      throw new lt.InputError("Name must be 1–100 letters, digits, spaces, '_', '.' or '-', starting with a "
        + "letter or digit.", input);
    }
    return name;
  }

  function setStatus(form, text) {
    dom.setText(form, "status", text || "");
  }

  // -- the list -----------------------------------------------------------------------

  function kindOf(dataset) {
    if (dataset.builtin) return "built-in";
    return { upload: "uploaded", generator: "generated" }[(dataset.meta || {}).origin] || "uploaded";
  }

  function rowOf(datasetId) {
    return rows.querySelector(`tr[data-dataset-id="${CSS.escape(datasetId)}"]`);
  }

  function fillRow(row, d) {
    const meta = d.meta || {};
    dom.field(row, "link").href = lt.path("datasets", d.id);
    dom.setText(row, "name", d.name);
    dom.field(row, "default").hidden = d.id !== initial.default;
    dom.setText(row, "id", d.id);
    dom.setText(row, "kind", kindOf(d));
    const origin = dom.field(row, "origin");
    origin.textContent = meta.filename || meta.generator || "";
    origin.hidden = !origin.textContent;
    dom.setText(row, "task", d.task);
    dom.setText(row, "n_features", fmt.count(d.n_features));
    dom.setText(row, "n_classes", d.task === "classification" ? String(d.n_classes) : "—");
    dom.setText(row, "splits", `${fmt.count(d.n_train)} / ${fmt.count(d.n_val)} / ${fmt.count(d.n_test)}`);
    const time = dom.field(row, "created_at");
    if (d.builtin) row.querySelector('td[data-label="Created"]').textContent = "—"; // part of the server
    else if (time) showTime(time, d.created_at);
  }

  function showTime(el, ts) {
    if (!ts) return;
    el.dateTime = new Date(ts * 1000).toISOString();
    el.textContent = fmt.localTime(ts);
  }

  function updateEmpty() {
    document.getElementById("datasets-empty").hidden = rows.children.length > 0;
  }

  /** Show exactly the datasets this page covers, moving as few rows as possible (focus stays put). */
  async function reconcile() {
    const body = await lt.api("GET", "/api/datasets");
    const wanted = body.datasets.slice(initial.offset, initial.offset + initial.per_page);
    const ids = new Set(wanted.map((d) => d.id));
    Array.from(rows.children).forEach((row) => {
      if (!ids.has(row.dataset.datasetId)) row.remove();
    });
    wanted.forEach((d, i) => {
      let row = rowOf(d.id);
      if (!row) {
        row = dom.cloneTemplate("dataset-row-template");
        row.dataset.datasetId = d.id;
        row.classList.add("is-new");
      }
      fillRow(row, d);
      if (rows.children[i] !== row) rows.insertBefore(row, rows.children[i] || null);
    });
    document.getElementById("dataset-total").textContent = fmt.count(body.datasets.length);
    updateEmpty();
  }

  // One fetch at a time; events that arrive meanwhile ask for one more afterwards.
  let syncing = null;
  let again = false;
  function sync() {
    if (syncing) {
      again = true;
      return syncing;
    }
    syncing = (async () => {
      do {
        again = false;
        try {
          await reconcile();
        } catch (err) {
          lt.notice(`Could not refresh the list of datasets: ${err.message}`, "error");
        }
      } while (again);
    })().finally(() => { syncing = null; });
    return syncing;
  }

  const live = lt.connect();
  live.on("dataset_created", (payload) => {
    lt.notice(`New dataset: ${payload.name} (${payload.task}).`);
    sync();
  });
  live.on("dataset_deleted", (payload) => {
    const row = rowOf(payload.dataset_id);
    if (row) {
      const hadFocus = row.contains(document.activeElement);
      row.remove();
      if (hadFocus) document.getElementById("list-heading").focus();
      lt.notice(`Dataset ${payload.dataset_id} was deleted.`);
    }
    updateEmpty();
    sync(); // a row from the next page moves up
  });
  // Datasets may have been created or deleted while the page loaded or the connection was down.
  live.onConnect(sync);

  // -- upload a CSV -----------------------------------------------------------------------

  const fileInput = uploadForm.elements.file;
  const targetSelect = uploadForm.elements.target;
  const targetHint = document.getElementById("upload-target-hint");
  const TARGET_HINT = targetHint.textContent;

  /** The first record of CSV text (quotes as Python's csv reads them): { fields, complete }. */
  function firstRecord(text) {
    const fields = [];
    let field = "";
    let quoted = false;
    let i = text.charCodeAt(0) === 0xfeff ? 1 : 0; // a byte-order mark is not part of the first name
    while (i < text.length) {
      const c = text[i];
      if (quoted) {
        if (c === '"' && text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        if (c === '"') quoted = false;
        else field += c;
        i += 1;
        continue;
      }
      if (c === '"' && field === "") quoted = true;
      else if (c === ",") {
        fields.push(field);
        field = "";
      } else if (c === "\r" || c === "\n") {
        fields.push(field);
        return { fields, complete: true };
      } else field += c;
      i += 1;
    }
    fields.push(field);
    return { fields, complete: false };
  }

  /** Decode as the server does: UTF-8, or Latin-1 when it is not UTF-8. */
  function decode(bytes) {
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch (err) {
      let text = "";
      for (let i = 0; i < bytes.length; i += 8192) text += String.fromCharCode(...bytes.subarray(i, i + 8192));
      return text;
    }
  }

  /** The column names in a file's header line, or null when they cannot be read here. */
  async function headerOf(file) {
    let bytes = new Uint8Array(await file.slice(0, HEADER_BYTES).arrayBuffer());
    const partial = file.size > HEADER_BYTES;
    if (partial) {
      const end = bytes.lastIndexOf(0x0a); // do not cut a character in two
      if (end < 0) return null;
      bytes = bytes.subarray(0, end + 1);
    }
    const record = firstRecord(decode(bytes));
    if (!record.complete && partial) return null;
    if (record.fields.length === 1 && record.fields[0].trim() === "") return null;
    // pandas names an empty header cell "Unnamed: <position>"
    return record.fields.map((name, i) => (name === "" ? `Unnamed: ${i}` : name));
  }

  function resetTargets(hint) {
    targetSelect.replaceChildren(new Option("the last column", ""));
    targetHint.textContent = hint || TARGET_HINT;
  }

  let headerRead = 0; // only the latest file's header fills the select
  fileInput.addEventListener("change", async () => {
    const file = fileInput.files[0];
    const ticket = ++headerRead;
    lt.showError(uploadForm, "");
    if (!file) {
      resetTargets();
      return;
    }
    let columns = null;
    try {
      columns = await headerOf(file);
    } catch (err) {
      columns = null;
    }
    if (ticket !== headerRead) return;
    if (!columns) {
      resetTargets(file.size === 0 ? "The file is empty."
        : "Its header line could not be read here; the server uses the last column unless you choose.");
      return;
    }
    targetSelect.replaceChildren(...columns.map((name) => new Option(name, name)));
    targetSelect.selectedIndex = columns.length - 1; // the server's default
    targetHint.textContent = `${columns.length} columns in ${file.name}; the last one is the default.`;
  });

  /** POST the form with upload progress (fetch cannot report it); refusals throw an ApiError. */
  function send(formData, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/api/datasets");
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable) onProgress(event.loaded / event.total);
      });
      xhr.upload.addEventListener("load", () => onProgress(1));
      xhr.addEventListener("load", () => {
        let data = null;
        try {
          data = JSON.parse(xhr.responseText);
        } catch (err) {
          data = null; // not JSON: the status line says enough
        }
        if (xhr.status >= 200 && xhr.status < 300) resolve(data);
        else {
          const message = data && data.message ? data.message : `${xhr.status} ${xhr.statusText}`;
          reject(new lt.ApiError(message, xhr.status, data && data.error, data && data.detail));
        }
      });
      xhr.addEventListener("error", () => reject(new lt.ApiError("The server could not be reached.", 0, "unreachable")));
      xhr.send(formData);
    });
  }

  /** The input a refusal of the upload is about, so it is marked and focused with the message. */
  function uploadInputFor(err) {
    const detail = err.detail || {};
    const elements = uploadForm.elements;
    if (detail.field === "split") return elements.split_train;
    if (detail.field && elements[detail.field] instanceof Element) return elements[detail.field];
    const target = targetSelect.value || (targetSelect.options.length > 1
      ? targetSelect.options[targetSelect.options.length - 1].value : "");
    if (detail.column && detail.column === target) return targetSelect;
    if (["empty_dataset", "malformed_csv", "duplicate_columns", "too_many_rows", "payload_too_large"].includes(err.code)) {
      return fileInput;
    }
    return null;
  }

  function readUpload() {
    const file = fileInput.files[0];
    if (!file) throw new lt.InputError("Choose a CSV file to upload.", fileInput);
    if (file.size === 0) throw new lt.InputError(`${file.name} is empty: a CSV needs a header line and rows.`, fileInput);
    if (file.size > initial.max_upload_bytes) {
      throw new lt.InputError(`${file.name} is ${byteSize(file.size)}; this server accepts files up to `
        + `${byteSize(initial.max_upload_bytes)} (LIVETRAIN_MAX_UPLOAD_BYTES).`, fileInput);
    }
    const name = checkName(uploadForm);
    const labels = { split_train: "Train fraction", split_val: "Validation fraction", split_test: "Test fraction" };
    const split = Object.entries(labels).map(([field, label]) => {
      const value = lt.readNumber(uploadForm, field, { label, min: 0, exclusiveMin: true, max: 1 });
      if (value === undefined) throw new lt.InputError(`${label} is missing.`, uploadForm.elements[field]);
      return value;
    });
    const total = split.reduce((a, b) => a + b, 0);
    if (Math.abs(total - 1) > 1e-6) {
      throw new lt.InputError(`The split fractions must add up to 1; they add up to ${fmt.number(total, 6)}.`,
        uploadForm.elements.split_train);
    }
    const seed = lt.readNumber(uploadForm, "seed", { label: "Split seed", integer: true, min: 0, max: MAX_SEED });
    const data = new FormData();
    data.append("file", file, file.name);
    if (name) data.append("name", name);
    if (targetSelect.value) data.append("target", targetSelect.value);
    if (uploadForm.elements.task.value) data.append("task", uploadForm.elements.task.value);
    data.append("split", split.join(","));
    if (seed !== undefined) data.append("seed", String(seed));
    return { file, data };
  }

  uploadForm.addEventListener("submit", (event) => {
    event.preventDefault();
    let request;
    try {
      request = readUpload();
    } catch (err) {
      lt.showError(uploadForm, err.message, err.input);
      return;
    }
    const label = `${request.file.name} (${byteSize(request.file.size)})`;
    lt.busy(uploadForm, async () => {
      setStatus(uploadForm, `Uploading ${label}…`);
      try {
        const dataset = await send(request.data, (share) => {
          setStatus(uploadForm, share < 1 ? `Uploading ${label}… ${Math.floor(share * 100)}%`
            : `Uploaded; the server is reading, typing and splitting ${request.file.name}…`);
        });
        setStatus(uploadForm, `Created ${dataset.name}; opening it…`);
        window.location.assign(lt.path("datasets", dataset.id));
      } catch (err) {
        setStatus(uploadForm, "");
        err.input = err.input || uploadInputFor(err);
        throw err;
      }
    });
  });

  // -- generate a dataset -------------------------------------------------------------------

  const generatorSelect = generateForm.elements.generator;

  function activeParams() {
    return generateForm.querySelector(`fieldset.generator-params[data-generator="${CSS.escape(generatorSelect.value)}"]`);
  }

  generatorSelect.addEventListener("change", () => {
    generateForm.querySelectorAll("fieldset.generator-params").forEach((fieldset) => {
      const shown = fieldset.dataset.generator === generatorSelect.value;
      fieldset.hidden = !shown;
      fieldset.disabled = !shown;
    });
    document.getElementById("generate-description").textContent =
      generatorSelect.selectedOptions[0].dataset.description || "";
    lt.showError(generateForm, "");
  });

  function readGenerate() {
    const fieldset = activeParams();
    const params = {};
    fieldset.querySelectorAll("input").forEach((input) => {
      const value = lt.readNumber(fieldset, input.name, {
        label: input.name, integer: input.dataset.type === "int", min: Number(input.min), max: Number(input.max),
      });
      if (value !== undefined) params[input.name] = value;
    });
    const body = { generator: generatorSelect.value, params };
    const name = checkName(generateForm);
    if (name) body.name = name;
    return body;
  }

  generateForm.addEventListener("submit", (event) => {
    event.preventDefault();
    let body;
    try {
      body = readGenerate();
    } catch (err) {
      lt.showError(generateForm, err.message, err.input);
      return;
    }
    lt.busy(generateForm, async () => {
      setStatus(generateForm, `Generating ${body.generator}…`);
      try {
        const dataset = await lt.api("POST", "/api/datasets", body);
        setStatus(generateForm, `Created ${dataset.name}; opening it…`);
        window.location.assign(lt.path("datasets", dataset.id));
      } catch (err) {
        setStatus(generateForm, "");
        const field = err.detail && err.detail.field;
        const fieldset = activeParams();
        if (field === "name") err.input = generateForm.elements.name;
        else if (field && fieldset.elements[field] instanceof Element) err.input = fieldset.elements[field];
        throw err;
      }
    });
  });

  // -- start ----------------------------------------------------------------------------------

  rows.querySelectorAll('time[data-field="created_at"]').forEach((time) => {
    const ts = Date.parse(time.dateTime) / 1000;
    if (ts) showTime(time, ts);
  });
})();
