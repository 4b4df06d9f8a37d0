/*
 * The datasets list (templates/datasets.html).
 *
 * The list: rows come and go with `dataset_created` / `dataset_deleted`. After each such
 * event (and after every (re)connect, which may have missed some) the page fetches the list
 * once and shows the slice it covers, in the server's order (built-ins first, then by id),
 * so a page never shows a row that belongs on another one.
 *
 * The upload form reads the header line of a chosen CSV or TSV file in the browser (detecting
 * its delimiter) to offer its columns as the target; for other files (Excel, Parquet, gzip)
 * the target is typed. It checks the file and the fields before sending, sends the reading
 * options only when they are set, shows the bytes sent and then the server's stages
 * (`dataset_progress` events carrying the form's upload_id), and shows the server's message in
 * place when it refuses the file, marking the field that fixes it. The generate form shows the
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

  // -- upload a file ----------------------------------------------------------------------

  const fileInput = uploadForm.elements.file;
  const targetSelect = uploadForm.elements.target;
  const targetTyped = uploadForm.elements.target_name;
  const targetLabel = document.getElementById("upload-target-label");
  const targetHint = document.getElementById("upload-target-hint");
  const TARGET_HINT = targetHint.textContent;
  const options = document.getElementById("upload-options");
  // The reading overrides, sent only when set (empty: the server detects them).
  const READING_OPTIONS = ["delimiter", "quote", "decimal", "thousands", "encoding", "sheet", "format"];
  const DELIMITERS = { comma: ",", semicolon: ";", tab: "\t", pipe: "|" };
  const DELIMITER_NAMES = { ",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe" };
  const TEXT_FILE = /\.(csv|tsv|tab|txt)$/i;
  const STEPS = ["sending", "reading", "preparing", "storing"];
  const STAGE_TEXT = {
    reading: "Reading the file…", preparing: "Typing, splitting and preprocessing…", storing: "Storing…",
    done: "Stored; opening the dataset…",
  };

  /** Up to `limit` whole records at the start of CSV text (quotes as Python's csv reads them), and the fields of
   * an unfinished last one: { records, rest }. */
  function readRecords(text, delimiter, quote, limit) {
    const records = [];
    let fields = [];
    let field = "";
    let quoted = false;
    let i = text.charCodeAt(0) === 0xfeff ? 1 : 0; // a byte-order mark is not part of the first name
    while (i < text.length && records.length < limit) {
      const c = text[i];
      if (quoted) {
        if (c === quote && text[i + 1] === quote) {
          field += quote;
          i += 2;
          continue;
        }
        if (c === quote) quoted = false;
        else field += c;
        i += 1;
        continue;
      }
      if (c === quote && field === "") quoted = true;
      else if (c === delimiter) {
        fields.push(field);
        field = "";
      } else if (c === "\r" || c === "\n") {
        fields.push(field);
        records.push(fields);
        fields = [];
        field = "";
        if (c === "\r" && text[i + 1] === "\n") i += 1;
      } else field += c;
      i += 1;
    }
    return { records, rest: fields.concat(field) };
  }

  /** The delimiter that splits the first lines into the same number (> 1) of fields most often; else a comma. */
  function detectDelimiter(text, quote) {
    let best = ",";
    let bestScore = 0;
    Object.values(DELIMITERS).forEach((delimiter) => {
      const { records } = readRecords(text, delimiter, quote, 20);
      if (!records.length || records[0].length < 2) return;
      const width = records[0].length;
      const same = records.filter((r) => r.length === width).length / records.length;
      const score = same + width / 1000; // consistency first, then more columns
      if (score > bestScore) {
        best = delimiter;
        bestScore = score;
      }
    });
    return best;
  }

  /** Decode as the server does: the encoding set, else by byte-order mark, else UTF-8, else Windows-1252. */
  function decode(bytes) {
    const named = uploadForm.elements.encoding.value.trim();
    if (named) {
      try {
        return new TextDecoder(named).decode(bytes);
      } catch (err) {
        // a codec name the browser does not know (the server may): guess as below
      }
    }
    if (bytes[0] === 0xff && bytes[1] === 0xfe) return new TextDecoder("utf-16le").decode(bytes);
    if (bytes[0] === 0xfe && bytes[1] === 0xff) return new TextDecoder("utf-16be").decode(bytes);
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch (err) {
      return new TextDecoder("windows-1252").decode(bytes);
    }
  }

  /** A text file this page can read the header of: a .csv, .tsv or .txt that is not an archive or Parquet. */
  function isPlainText(file, start) {
    const format = uploadForm.elements.format.value;
    if (format === "xlsx" || format === "parquet") return false;
    if (!TEXT_FILE.test(file.name) && !["csv", "tsv"].includes(format)) return false;
    const magic = String.fromCharCode(...start.subarray(0, 4));
    return !(magic.startsWith("PK") || magic === "PAR1" || magic.startsWith("\x1f\x8b"));
  }

  /** The column names in a text file's header line and its delimiter; null when they cannot be read here. */
  async function headerOf(file) {
    let bytes = new Uint8Array(await file.slice(0, HEADER_BYTES).arrayBuffer());
    if (!isPlainText(file, bytes)) return null;
    const partial = file.size > HEADER_BYTES;
    if (partial) {
      const end = bytes.lastIndexOf(0x0a); // do not cut a line in two
      if (end < 0) return null;
      bytes = bytes.subarray(0, end + 1);
    }
    const text = decode(bytes);
    const elements = uploadForm.elements;
    const quote = elements.quote.value || '"';
    const tabbed = elements.format.value === "tsv" || /\.(tsv|tab)$/i.test(file.name);
    const delimiter = DELIMITERS[elements.delimiter.value] || (tabbed ? "\t" : detectDelimiter(text, quote));
    const { records, rest } = readRecords(text, delimiter, quote, 1);
    if (!records.length && partial) return null;
    const fields = records.length ? records[0] : rest;
    if (fields.length === 1 && fields[0].trim() === "") return null;
    return { columns: fields.map((name) => name.trim()), delimiter }; // the server strips the names too
  }

  /** Offer the target as a select of the header's columns (`chosen` selected if among them, else the last), or
   * as a name to type (`columns` null). */
  function showTargets(columns, hint, chosen) {
    const typed = columns === null;
    targetSelect.hidden = typed;
    targetSelect.disabled = typed;
    targetTyped.hidden = !typed;
    targetTyped.disabled = !typed;
    targetLabel.htmlFor = typed ? targetTyped.id : targetSelect.id;
    if (typed || !columns.length) targetSelect.replaceChildren(new Option("the last column", ""));
    else {
      targetSelect.replaceChildren(...columns.map((name, i) => {
        if (name) return new Option(name, name);
        // an empty name cannot be sent; left empty, the target is the last column, so only that one is offered
        const option = new Option(`(column ${i + 1} has no name)`, "");
        option.disabled = i < columns.length - 1;
        return option;
      }));
      targetSelect.selectedIndex = columns.length - 1; // the server's default
      if (chosen && columns.includes(chosen)) targetSelect.value = chosen;
    }
    targetHint.textContent = hint || TARGET_HINT;
  }

  function targetInput() {
    return targetTyped.disabled ? targetSelect : targetTyped;
  }

  let headerRead = 0; // only the latest file's header fills the select
  async function offerTargets(keepChoice) {
    const file = fileInput.files[0];
    const chosen = keepChoice ? targetSelect.value : "";
    const ticket = ++headerRead;
    if (!file) {
      showTargets([]);
      return;
    }
    let header = null;
    try {
      header = await headerOf(file);
    } catch (err) {
      header = null;
    }
    if (ticket !== headerRead) return;
    if (file.size === 0) showTargets([], "The file is empty.");
    else if (!header) {
      showTargets(null, "Type the name of the column to predict, or leave it empty for the last column "
        + "(this page reads the header of a plain CSV or TSV file only).");
    } else {
      showTargets(header.columns, `${header.columns.length} columns in ${file.name} `
        + `(${DELIMITER_NAMES[header.delimiter]}-separated); the last one is the default.`, chosen);
    }
  }

  fileInput.addEventListener("change", () => {
    lt.showError(uploadForm, "");
    offerTargets(false);
  });
  // the same file read another way: its columns again, the chosen target kept
  ["delimiter", "quote", "encoding", "format"].forEach((name) => {
    uploadForm.elements[name].addEventListener("change", () => offerTargets(true));
  });
  if (window.location.hash === "#upload-options") options.open = true;

  /** POST the form with upload progress (fetch cannot report it); refusals throw an ApiError. */
  function send(formData, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/api/datasets");
      xhr.setRequestHeader("Accept", "application/json");
      xhr.setRequestHeader("X-CSRF-Token", window.livetrain.csrfToken());
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

  /** The input, opened to view if it is among the reading options. */
  function reveal(input) {
    if (options.contains(input)) options.open = true;
    return input;
  }

  /** The input a refusal of the upload is about, so it is marked and focused with the message. */
  function uploadInputFor(err) {
    const detail = err.detail || {};
    const elements = uploadForm.elements;
    if (err.code === "missing_target" || detail.field === "missing_target") {
      return reveal(document.getElementById("upload-missing-drop"));
    }
    if (detail.field === "split") return elements.split_train;
    if (detail.field === "target") return targetInput();
    if (detail.field && elements[detail.field] instanceof Element) return reveal(elements[detail.field]);
    const target = targetInput().value.trim() || (targetSelect.options.length > 1
      ? targetSelect.options[targetSelect.options.length - 1].value : "");
    if (detail.column && detail.column === target) return targetInput();
    if (["empty_dataset", "malformed_csv", "malformed_file", "unsupported_format", "duplicate_columns",
      "too_many_rows", "payload_too_large"].includes(err.code)) {
      return fileInput;
    }
    return null;
  }

  function newUploadId() {
    const bytes = crypto.getRandomValues(new Uint8Array(12)); // randomUUID needs a secure context
    return "page-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function readUpload() {
    const file = fileInput.files[0];
    const elements = uploadForm.elements;
    if (!file) throw new lt.InputError("Choose a file to upload.", fileInput);
    if (file.size === 0) throw new lt.InputError(`${file.name} is empty: a table needs a header row and rows.`, fileInput);
    if (file.size > initial.max_upload_bytes) {
      throw new lt.InputError(`${file.name} is ${byteSize(file.size)}; this server accepts files up to `
        + `${byteSize(initial.max_upload_bytes)} (LIVETRAIN_MAX_UPLOAD_BYTES).`, fileInput);
    }
    const name = checkName(uploadForm);
    const labels = { split_train: "Train fraction", split_val: "Validation fraction", split_test: "Test fraction" };
    const split = Object.entries(labels).map(([field, label]) => {
      const value = lt.readNumber(uploadForm, field, { label, min: 0, exclusiveMin: true, max: 1 });
      if (value === undefined) throw new lt.InputError(`${label} is missing.`, elements[field]);
      return value;
    });
    const total = split.reduce((a, b) => a + b, 0);
    if (Math.abs(total - 1) > 1e-6) {
      throw new lt.InputError(`The split fractions must add up to 1; they add up to ${fmt.number(total, 6)}.`,
        elements.split_train);
    }
    const seed = lt.readNumber(uploadForm, "seed", { label: "Split seed", integer: true, min: 0, max: MAX_SEED });
    const delimiter = DELIMITERS[elements.delimiter.value];
    if (delimiter && elements.decimal.value === delimiter) {
      throw new lt.InputError("The decimal mark and the delimiter cannot both be a comma.", reveal(elements.decimal));
    }
    const sheet = elements.sheet.value.trim();
    if (sheet && !/\.xlsx$/i.test(file.name) && elements.format.value !== "xlsx") {
      throw new lt.InputError(`Sheet is for Excel workbooks (.xlsx); ${file.name} is not one. Clear it, or set `
        + "the format to Excel.", reveal(elements.sheet));
    }
    const uploadId = newUploadId();
    const data = new FormData();
    data.append("file", file, file.name);
    if (name) data.append("name", name);
    const target = targetInput().value.trim();
    if (target) data.append("target", target);
    if (elements.task.value) data.append("task", elements.task.value);
    data.append("split", split.join(","));
    if (seed !== undefined) data.append("seed", String(seed));
    READING_OPTIONS.forEach((option) => {
      const value = elements[option].value.trim();
      if (value) data.append(option, value);
    });
    if (elements.missing_target.value === "drop") data.append("missing_target", "drop");
    data.append("upload_id", uploadId);
    return { file, data, uploadId };
  }

  // -- an upload's progress: the bytes sent, then the server's stages (dataset_progress events) --

  const progress = document.getElementById("upload-progress");
  const bar = document.getElementById("upload-bar");
  let current = null; // { uploadId, step, label, created: the dataset's name once the server has answered }

  /** Show the upload at `stage` (a step, or "done"); never goes back. */
  function showStage(stage, share) {
    const at = stage === "done" ? STEPS.length : STEPS.indexOf(stage);
    if (!current || at < current.step || (at === current.step && stage !== "sending")) return;
    current.step = at;
    progress.hidden = false;
    progress.querySelectorAll("li").forEach((li, i) => {
      li.dataset.state = i < at ? "done" : i === at ? "active" : "pending";
    });
    if (stage === "sending") {
      bar.value = share;
      setStatus(uploadForm, share < 1 ? `Uploading ${current.label}… ${Math.floor(share * 100)}%`
        : `Uploaded ${current.label}; waiting for the server…`);
    } else {
      if (stage === "done") bar.value = 1;
      else bar.removeAttribute("value"); // the server's work has no measure: an indeterminate bar
      // the answer may come before the last events: once it has, the status says so
      setStatus(uploadForm, current.created ? `Created ${current.created}; opening it…` : STAGE_TEXT[stage]);
    }
  }

  function endProgress() {
    current = null;
    progress.hidden = true;
    bar.value = 0;
  }

  live.on("dataset_progress", (payload) => {
    if (current && payload.upload_id === current.uploadId && payload.stage !== "failed") showStage(payload.stage);
  });

  uploadForm.addEventListener("submit", (event) => {
    event.preventDefault();
    let request;
    try {
      request = readUpload();
    } catch (err) {
      lt.showError(uploadForm, err.message, err.input);
      return;
    }
    lt.busy(uploadForm, async () => {
      current = { uploadId: request.uploadId, step: 0, label: `${request.file.name} (${byteSize(request.file.size)})` };
      showStage("sending", 0);
      try {
        const dataset = await send(request.data, (share) => showStage("sending", share));
        current.created = dataset.name; // the steps still follow the events, which may come after the answer
        setStatus(uploadForm, `Created ${dataset.name}; opening it…`);
        window.location.assign(lt.path("datasets", dataset.id));
      } catch (err) {
        setStatus(uploadForm, "");
        endProgress();
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
