/*
 * The builder page (templates/builder.html): a network's layers and heads in order.
 *
 * Every change goes through the REST API (live.js `api()`, which sends the CSRF header) with the revision
 * the page shows, so a change made against an older revision is refused instead of undoing someone else's.
 * Nothing moves on the page before the server has accepted a change: a refusal is shown next to the row it
 * names (`detail.current_index`), and the list stays as it was. Other clients' edits arrive as
 * `network_updated` events; run events lock and unlock editing.
 */
(function () {
  "use strict";

  const lt = window.livetrain;
  const initial = lt.embedded("builder-state");
  const id = initial.network_id;
  const base = lt.path("api", "networks", id);
  const catalog = initial.catalog || {};
  const headCatalog = initial.heads;
  let structure = initial.structure;
  let locked = Boolean(initial.locked);

  const layerList = document.getElementById("layer-list");
  const headList = document.getElementById("head-list");
  const addForm = document.getElementById("add-layer-form");
  const headForm = document.getElementById("add-head-form");
  const generalError = document.getElementById("builder-error");
  const headError = document.getElementById("head-error");
  const announcer = document.getElementById("builder-announce");
  const editable = Boolean(structure.editable);

  // -- text --------------------------------------------------------------------------------

  function shapeText(dims) {
    return dims && dims.length ? dims.join(" × ") : "—";
  }

  function paramsText(spec) {
    if (!spec) return "";
    return Object.entries(spec)
      .filter(([key]) => key !== "type" && key !== "name")
      .map(([key, value]) => `${key} ${value}`)
      .join(", ");
  }

  function layerName(layer) {
    return `layer ${layer.index} (${layer.type})`;
  }

  function announce(text) {
    announcer.textContent = text;
  }

  // -- parameter inputs, from the spec parser's own table -------------------------------------

  /** Inputs for a layer type's parameters into `box`, filled from `values` (a layer spec) when given. */
  function renderParams(box, type, values, prefix) {
    box.replaceChildren();
    (catalog[type] || []).forEach((param) => {
      const field = document.createElement("div");
      field.className = "field";
      const label = document.createElement("label");
      const inputId = `${prefix}-${param.name}`;
      label.htmlFor = inputId;
      label.textContent = param.name + (param.required ? " (required)" : "");
      let input;
      const current = values && values[param.name] != null ? values[param.name] : null;
      if (param.kind === "bool") {
        input = document.createElement("input");
        input.type = "checkbox";
        input.checked = current != null ? Boolean(current) : Boolean(param.default);
        field.classList.add("check");
      } else if (param.kind === "choice" && param.choices.length) {
        input = document.createElement("select");
        param.choices.forEach((choice) => input.add(new Option(choice, choice)));
        input.value = current != null ? current : (param.default != null ? param.default : param.choices[0]);
      } else {
        input = document.createElement("input");
        if (param.kind === "int" || param.kind === "float") {
          input.type = "number";
          input.step = param.kind === "int" ? "1" : "any";
          input.inputMode = param.kind === "int" ? "numeric" : "decimal";
        }
        if (current != null) input.value = current;
        input.placeholder = param.default != null ? `default ${param.default}` : (param.required ? "" : "inferred");
      }
      input.id = inputId;
      input.name = param.name;
      input.dataset.kind = param.kind;
      if (param.required) input.required = true;
      field.append(label, input);
      box.append(field);
    });
    if (!box.children.length) {
      const none = document.createElement("p");
      none.className = "hint";
      none.textContent = `${type} has no parameters.`;
      box.append(none);
    }
  }

  /** A layer spec from the inputs `renderParams` made; empty optional fields are left to the server's defaults. */
  function readParams(box, type) {
    const layer = { type };
    box.querySelectorAll("input, select").forEach((input) => {
      const kind = input.dataset.kind;
      if (kind === "bool") {
        layer[input.name] = input.checked;
        return;
      }
      const text = String(input.value).trim();
      if (!text) {
        if (input.required) throw new lt.InputError(`${input.name} is required.`, input);
        return;
      }
      if (kind === "int" || kind === "float") {
        const value = Number(text);
        if (!Number.isFinite(value) || (input.validity && input.validity.badInput)) {
          throw new lt.InputError(`${input.name} must be a number.`, input);
        }
        if (kind === "int" && !Number.isInteger(value)) {
          throw new lt.InputError(`${input.name} must be a whole number.`, input);
        }
        layer[input.name] = value;
      } else {
        layer[input.name] = text;
      }
    });
    return layer;
  }

  // -- rendering -------------------------------------------------------------------------------

  function button(action, text, label, extra) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "small" + (extra ? ` ${extra}` : "");
    b.dataset.action = action;
    b.textContent = text;
    b.setAttribute("aria-label", label);
    b.disabled = locked;
    return b;
  }

  function rowError() {
    const p = document.createElement("p");
    p.className = "row-error";
    p.dataset.field = "error";
    p.setAttribute("role", "alert");
    p.hidden = true;
    return p;
  }

  function cells(row, index, title, detail, shape, parameters) {
    const pos = document.createElement("span");
    pos.className = "row-pos";
    pos.textContent = index;
    const main = document.createElement("span");
    main.className = "row-main";
    const strong = document.createElement("strong");
    strong.textContent = title;
    const small = document.createElement("small");
    small.textContent = detail;
    main.append(strong, " ", small);
    const shapeCell = document.createElement("span");
    shapeCell.className = "row-shape";
    shapeCell.textContent = shapeText(shape);
    shapeCell.title = "output shape";
    const count = document.createElement("span");
    count.className = "row-count";
    count.textContent = parameters == null ? "—" : `${lt.fmt.count(parameters)} params`;
    row.append(pos, main, shapeCell, count);
  }

  function layerRow(layer, count) {
    const row = document.createElement("li");
    row.className = "builder-row";
    row.dataset.index = layer.index;
    row.dataset.type = layer.type;
    cells(row, layer.index, layer.type, paramsText(layer.spec), layer.output_shape, layer.parameters);
    if (editable) {
      row.tabIndex = 0;
      row.draggable = !locked;
      row.setAttribute("aria-label", `${layerName(layer)}: ${paramsText(layer.spec) || "no parameters"}; ` +
        `output ${shapeText(layer.output_shape)}`);
      const actions = document.createElement("span");
      actions.className = "row-actions";
      const up = button("up", "↑", `Move ${layerName(layer)} up`);
      const down = button("down", "↓", `Move ${layerName(layer)} down`);
      up.disabled = locked || layer.index === 0;
      down.disabled = locked || layer.index === count - 1;
      actions.append(up, down, button("edit", "Edit", `Edit ${layerName(layer)}`),
        button("remove", "Remove", `Remove ${layerName(layer)}`, "quiet"));
      row.append(actions);
    }
    row.append(rowError());
    return row;
  }

  function headRow(head, count) {
    const row = document.createElement("li");
    row.className = "builder-row";
    row.dataset.index = head.index;
    row.dataset.name = head.name;
    cells(row, head.index, head.name, paramsText(head.spec), head.output_shape, head.parameters);
    if (editable && headCatalog) {
      row.tabIndex = 0;
      row.setAttribute("aria-label", `head ${head.name}: ${paramsText(head.spec)}`);
      const actions = document.createElement("span");
      actions.className = "row-actions";
      const up = button("up", "↑", `Move head ${head.name} up`);
      const down = button("down", "↓", `Move head ${head.name} down`);
      up.disabled = locked || head.index === 0;
      down.disabled = locked || head.index === count - 1;
      actions.append(up, down, button("remove", "Remove", `Remove head ${head.name}`, "quiet"));
      row.append(actions);
    }
    row.append(rowError());
    return row;
  }

  function renderPositions(select, layers, withHeads) {
    if (!select) return;
    const kept = select.value;
    select.replaceChildren(new Option(`${withHeads ? "at the end" : "before the output layer"} (default)`, ""));
    layers.forEach((layer) => select.add(new Option(`before ${layer.index}: ${layer.type}`, String(layer.index))));
    select.add(new Option("at the very end", String(layers.length)));
    if (Array.from(select.options).some((o) => o.value === kept)) select.value = kept;
  }

  function renderAttach(select, layers) {
    if (!select) return;
    const kept = select.value;
    select.replaceChildren(new Option("the last layer", ""));
    layers.forEach((layer) => select.add(new Option(`${layer.index}: ${layer.type}`, String(layer.index))));
    if (Array.from(select.options).some((o) => o.value === kept)) select.value = kept;
  }

  function render() {
    const layers = structure.layers;
    layerList.replaceChildren(...layers.map((layer) => layerRow(layer, layers.length)));
    headList.replaceChildren(...structure.heads.map((head) => headRow(head, structure.heads.length)));
    headList.hidden = !structure.heads.length;
    document.getElementById("heads-empty").hidden = Boolean(structure.heads.length);
    document.getElementById("revision").textContent = `revision ${structure.revision}`;
    document.getElementById("parameter-total").textContent = lt.fmt.count(structure.parameter_count);
    document.getElementById("lock-note").hidden = !locked;
    if (addForm) {
      renderPositions(addForm.elements.index, layers, structure.heads.length > 0);
      addForm.querySelector('[data-action="add-layer"]').disabled = locked;
    }
    if (headForm) {
      renderAttach(headForm.elements.attach, layers);
      headForm.querySelector('[data-action="add-head"]').disabled = locked;
    }
  }

  // -- errors ------------------------------------------------------------------------------------

  function clearErrors() {
    document.querySelectorAll(".row-error").forEach((p) => { p.hidden = true; p.textContent = ""; });
    document.querySelectorAll(".builder-row.refused").forEach((row) => row.classList.remove("refused"));
    generalError.hidden = true;
    if (headError) headError.hidden = true;
    [addForm, headForm].forEach((form) => { if (form) lt.showError(form, ""); });
  }

  function showAt(row, message) {
    const box = row.querySelector('[data-field="error"]');
    box.textContent = message;
    box.hidden = false;
    row.classList.add("refused");
  }

  /**
   * Show a refusal where it belongs: beside the current layer row it names; else beside the row the change
   * was about (`where.row`), in the form it came from (`where.form`), or at the top of the list.
   */
  function showRefusal(err, where) {
    const detail = err.detail || {};
    if (Number.isInteger(detail.current_index)) {
      const row = layerList.querySelector(`.builder-row[data-index="${detail.current_index}"]`);
      if (row) {
        showAt(row, err.message);
        return;
      }
    }
    if (where.form) {
      lt.showError(where.form, err.message, err.input || null);
      return;
    }
    if (where.row && where.row.isConnected) {
      showAt(where.row, err.message);
      return;
    }
    const box = where.heads ? headError : generalError;
    box.textContent = err.message;
    box.hidden = false;
  }

  // -- sending changes ---------------------------------------------------------------------------

  let sending = false;
  // a change's own network_updated event may arrive before its answer: it is held until the answer is in
  let heldUpdate = null;

  /** Send one change; on success show the new structure and return it, on refusal show why and return null. */
  async function send(method, url, body, where) {
    if (sending) return null;
    sending = true;
    clearErrors();
    try {
      const target = method === "DELETE" ? `${url}?revision=${structure.revision}` : url;
      const result = await lt.api(method, target, method === "DELETE" ? undefined : {
        ...body, revision: structure.revision });
      structure = result;
      render();
      if (result.change && result.change.summary) announce(`Saved: ${result.change.summary}.`);
      return result;
    } catch (err) {
      showRefusal(err, where || {});
      if (err.status === 409 && err.code === "stale_revision") await reload();
      return null;
    } finally {
      sending = false;
      const held = heldUpdate;
      heldUpdate = null;
      if (held) followUpdate(held);
    }
  }

  /** Fetch the layers; redraw only when they changed, so a refusal shown meanwhile stays beside its row. */
  async function reload() {
    try {
      const fresh = await lt.api("GET", `${base}/layers`);
      if (fresh.revision === structure.revision) return;
      structure = fresh;
      render();
    } catch (err) {
      generalError.textContent = err.message;
      generalError.hidden = false;
    }
  }

  function moved(order, from, to) {
    const next = order.slice();
    const [item] = next.splice(from, 1);
    next.splice(to, 0, item);
    return next;
  }

  async function moveLayer(from, to) {
    const count = structure.layers.length;
    if (locked || to < 0 || to >= count || from === to) return;
    const row = layerList.querySelector(`.builder-row[data-index="${from}"]`);
    const order = moved([...Array(count).keys()], from, to);
    const result = await send("PUT", `${base}/layers/order`, { order }, { row });
    const focusAt = result ? to : from;
    const target = layerList.querySelector(`.builder-row[data-index="${focusAt}"]`);
    if (target) target.focus();
    if (result) announce(`Moved ${structure.layers[to].type} to position ${to}.`);
  }

  async function moveHead(from, to) {
    const count = structure.heads.length;
    if (locked || to < 0 || to >= count || from === to) return;
    const names = structure.heads.map((h) => h.name);
    const row = headList.querySelector(`.builder-row[data-index="${from}"]`);
    const result = await send("PUT", `${base}/heads/order`, { order: moved(names, from, to) }, { row, heads: true });
    const target = headList.querySelector(`.builder-row[data-index="${result ? to : from}"]`);
    if (target) target.focus();
  }

  // -- editing a row in place ----------------------------------------------------------------------

  function openEditor(row) {
    if (row.querySelector("form")) return;
    const layer = structure.layers[Number(row.dataset.index)];
    const form = document.createElement("form");
    form.className = "row-edit";
    form.noValidate = true;
    const box = document.createElement("div");
    box.className = "fields param-fields";
    renderParams(box, layer.type, layer.spec, `edit-${layer.index}`);
    const actions = document.createElement("div");
    actions.className = "actions";
    const save = document.createElement("button");
    save.type = "submit";
    save.className = "primary small";
    save.textContent = "Save";
    const cancel = document.createElement("button");
    cancel.type = "button";
    cancel.className = "small";
    cancel.dataset.action = "cancel-edit";
    cancel.textContent = "Cancel";
    actions.append(save, cancel);
    const error = document.createElement("p");
    error.className = "form-error";
    error.setAttribute("role", "alert");
    error.hidden = true;
    form.append(box, actions, error);
    row.append(form);
    row.draggable = false; // inputs inside a draggable row could not be selected with the mouse
    const first = box.querySelector("input, select");
    if (first) first.focus();
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      let spec;
      try {
        spec = readParams(box, layer.type);
      } catch (err) {
        lt.showError(form, err.message, err.input);
        return;
      }
      const index = layer.index;
      const result = await send("PUT", `${base}/layers/${index}`, { layer: spec }, { row, form });
      if (result) {
        const again = layerList.querySelector(`.builder-row[data-index="${index}"]`);
        if (again) again.focus();
      }
    });
  }

  // -- events on the lists ---------------------------------------------------------------------------

  if (editable) {
    layerList.addEventListener("click", (event) => {
      const b = event.target.closest("button[data-action]");
      if (!b) return;
      const row = b.closest(".builder-row");
      const index = Number(row.dataset.index);
      const action = b.dataset.action;
      if (action === "up") moveLayer(index, index - 1);
      else if (action === "down") moveLayer(index, index + 1);
      else if (action === "edit") openEditor(row);
      else if (action === "cancel-edit") {
        b.closest("form").remove();
        row.draggable = !locked;
        row.focus();
      } else if (action === "remove") send("DELETE", `${base}/layers/${index}`, undefined, { row });
    });

    layerList.addEventListener("keydown", (event) => {
      const row = event.target;
      if (!row.classList || !row.classList.contains("builder-row") || !event.altKey) return;
      if (event.key !== "ArrowUp" && event.key !== "ArrowDown") return;
      event.preventDefault();
      const index = Number(row.dataset.index);
      moveLayer(index, event.key === "ArrowUp" ? index - 1 : index + 1);
    });

    // drag and drop: the row lands before or after the row it is dropped on, by which half it is over
    let dragFrom = null;
    function dropPlace(event) {
      const row = event.target.closest && event.target.closest(".builder-row");
      if (!row || !layerList.contains(row)) return null;
      const rect = row.getBoundingClientRect();
      return { row, after: event.clientY > rect.top + rect.height / 2 };
    }
    function clearMarks() {
      layerList.querySelectorAll(".drop-before, .drop-after, .dragging").forEach((row) => {
        row.classList.remove("drop-before", "drop-after", "dragging");
      });
    }
    layerList.addEventListener("dragstart", (event) => {
      const row = event.target.closest(".builder-row");
      if (!row || locked) {
        event.preventDefault();
        return;
      }
      dragFrom = Number(row.dataset.index);
      row.classList.add("dragging");
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", String(dragFrom));
    });
    layerList.addEventListener("dragover", (event) => {
      if (dragFrom === null) return;
      const place = dropPlace(event);
      if (!place) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "move";
      layerList.querySelectorAll(".drop-before, .drop-after").forEach((row) => {
        row.classList.remove("drop-before", "drop-after");
      });
      place.row.classList.add(place.after ? "drop-after" : "drop-before");
    });
    layerList.addEventListener("drop", (event) => {
      if (dragFrom === null) return;
      event.preventDefault();
      const place = dropPlace(event);
      const from = dragFrom;
      dragFrom = null;
      clearMarks();
      if (!place) return;
      let to = Number(place.row.dataset.index) + (place.after ? 1 : 0);
      if (from < to) to -= 1;
      moveLayer(from, to);
    });
    layerList.addEventListener("dragend", () => {
      dragFrom = null;
      clearMarks();
    });

    headList.addEventListener("click", (event) => {
      const b = event.target.closest("button[data-action]");
      if (!b) return;
      const row = b.closest(".builder-row");
      const index = Number(row.dataset.index);
      if (b.dataset.action === "up") moveHead(index, index - 1);
      else if (b.dataset.action === "down") moveHead(index, index + 1);
      else if (b.dataset.action === "remove") {
        send("DELETE", `${base}/heads/${encodeURIComponent(row.dataset.name)}`, undefined, { row, heads: true });
      }
    });
    headList.addEventListener("keydown", (event) => {
      const row = event.target;
      if (!row.classList || !row.classList.contains("builder-row") || !event.altKey) return;
      if (event.key !== "ArrowUp" && event.key !== "ArrowDown") return;
      event.preventDefault();
      const index = Number(row.dataset.index);
      moveHead(index, event.key === "ArrowUp" ? index - 1 : index + 1);
    });
  }

  if (addForm) {
    const typeSelect = addForm.elements.type;
    const box = addForm.querySelector('[data-field="params"]');
    renderParams(box, typeSelect.value, null, "add");
    typeSelect.addEventListener("change", () => renderParams(box, typeSelect.value, null, "add"));
    addForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      let layer;
      try {
        layer = readParams(box, typeSelect.value);
      } catch (err) {
        lt.showError(addForm, err.message, err.input);
        return;
      }
      const position = addForm.elements.index.value;
      const body = { layer };
      if (position !== "") body.index = Number(position);
      const result = await send("POST", `${base}/layers`, body, { form: addForm });
      if (result) {
        const row = layerList.querySelector(`.builder-row[data-index="${result.change.index}"]`);
        if (row) row.classList.add("is-new");
      }
    });
  }

  if (headForm) {
    headForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const els = headForm.elements;
      const head = { name: els.name.value.trim(), task: els.task.value };
      if (!head.name) {
        lt.showError(headForm, "A head needs a name.", els.name);
        return;
      }
      if (els.loss.value) head.loss = els.loss.value;
      if (els.attach.value !== "") head.attach = Number(els.attach.value);
      try {
        const weight = lt.readNumber(headForm, "weight", { min: 0, exclusiveMin: true, label: "Weight" });
        if (weight !== undefined) head.weight = weight;
      } catch (err) {
        lt.showError(headForm, err.message, err.input);
        return;
      }
      const result = await send("POST", `${base}/heads`, { head }, { form: headForm, heads: true });
      if (result) els.name.value = "";
    });
  }

  // -- live: other clients' edits, and runs that lock the network ------------------------------------

  function addRevision(payload) {
    const body = document.getElementById("revisions");
    if (body.querySelector(`tr[data-revision="${payload.revision}"]`)) return;
    const tr = document.createElement("tr");
    tr.dataset.revision = payload.revision;
    const change = payload.change || {};
    const values = [["Revision", String(payload.revision)], ["Change", change.summary || change.op || ""],
      ["By", payload.author || "—"], ["When", lt.fmt.localTime(payload.ts)]];
    values.forEach(([label, text]) => {
      const td = document.createElement("td");
      td.dataset.label = label;
      td.textContent = text;
      tr.append(td);
    });
    body.prepend(tr);
  }

  async function refreshLock() {
    try {
      const network = await lt.api("GET", base);
      const now = Boolean(network.active_run);
      if (now !== locked) {
        locked = now;
        render();
      }
    } catch (err) {
      console.warn("livetrain: could not look up the network's runs:", err.message);
    }
  }

  const live = lt.connect([{ network_id: id }]);
  /** Another client's change (one newer than what this page shows): redraw from the server, and say so. */
  function followUpdate(payload) {
    if (payload.revision <= structure.revision) return; // this page's own change, already shown
    reload();
    lt.notice(`Changed elsewhere${payload.author ? ` by ${payload.author}` : ""}: ` +
      `${(payload.change && payload.change.summary) || "the layers"} (revision ${payload.revision}).`);
  }

  live.on("network_updated", (payload) => {
    if (!payload || payload.network_id !== id) return;
    addRevision(payload);
    if (sending) {
      if (!heldUpdate || payload.revision > heldUpdate.revision) heldUpdate = payload;
    } else {
      followUpdate(payload);
    }
  });
  ["run_created", "training_started", "training_complete", "training_error", "training_cancelled",
    "training_interrupted"].forEach((name) => live.on(name, (payload) => {
    if (payload && payload.network_id === id) refreshLock();
  }));
  live.on("network_deleted", (payload) => {
    if (payload && payload.network_id === id) {
      locked = true;
      render();
      generalError.textContent = "This network has been deleted.";
      generalError.hidden = false;
    }
  });
  // after a reconnect, what changed meanwhile
  live.onConnect(() => {
    reload();
    refreshLock();
  });

  render();
})();
