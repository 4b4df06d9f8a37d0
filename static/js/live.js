/*
 * livetrain pages: what every page shares.
 *
 * The server renders each page complete; a page's own script (dashboard.js, network.js, ...)
 * keeps it live with what this file gives it as `window.livetrain`:
 *   - api():      fetch against the REST API; a refusal throws an ApiError carrying the
 *                 server's `message`, which forms show in place;
 *   - forms:      client-side checks before sending (showError, busy, readNumber);
 *   - fmt, dom:   the formatting and small DOM helpers the pages have in common;
 *   - connect():  the Socket.IO connection; it joins the page's rooms again after every
 *                 reconnect (the server forgets them when a client goes away);
 *   - RunFeed:    the runs a page shows. It applies each run's events once, in `seq` order,
 *                 and after a reconnect fetches what it missed (GET /api/runs/{id}/events
 *                 ?after_seq=N) while holding back live events until that has been applied,
 *                 so a chart never has a gap or a duplicate point (docs/events.md).
 * There is no polling anywhere.
 */
(function () {
  "use strict";

  const ACTIVE = new Set(["queued", "running"]);
  const FINAL = new Set(["completed", "failed", "cancelled", "interrupted"]);
  const SILENT_RUN_MS = 15000; // a run in training that sends nothing for this long is looked up
  const NOTICE_MS = 8000;
  // the monitor's samples and the run's log lines: they move a run's `seq` like the others, but reach
  // a page's onEvent only when it asks for them (RunFeed option `monitor`)
  const MONITOR_EVENT_NAMES = ["weights_update", "training_stats", "run_log"];
  const RUN_EVENT_NAMES = ["run_created", "training_started", "training_progress", "training_update",
    "training_complete", "training_error", "training_cancelled", "training_interrupted", ...MONITOR_EVENT_NAMES];

  // -- REST -----------------------------------------------------------------------

  class ApiError extends Error {
    constructor(message, status, code, detail) {
      super(message);
      this.status = status;
      this.code = code;
      this.detail = detail || null;
    }
  }

  /** JSON (or FormData) in, JSON out; a refusal throws an ApiError with the server's message. */
  /** The session's CSRF token: the server refuses a signed-in page's writes without it. */
  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  async function api(method, url, body) {
    const options = { method, headers: { Accept: "application/json" } };
    if (method !== "GET" && method !== "HEAD") options.headers["X-CSRF-Token"] = csrfToken();
    if (body instanceof FormData) {
      options.body = body; // the browser sets the multipart boundary
    } else if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, options);
    } catch (err) {
      throw new ApiError("The server could not be reached.", 0, "unreachable");
    }
    let data = null;
    try {
      data = await response.json();
    } catch (err) {
      data = null; // not JSON: the status line says enough
    }
    if (!response.ok) {
      const message = data && data.message ? data.message : `${response.status} ${response.statusText}`;
      throw new ApiError(message, response.status, data && data.error, data && data.detail);
    }
    return data;
  }

  function path(...parts) {
    return "/" + parts.map((p) => encodeURIComponent(p)).join("/");
  }

  // -- formatting ---------------------------------------------------------------------

  const fmt = {
    percent(value) {
      return value == null ? "—" : (value * 100).toFixed(1) + "%";
    },
    /** A metric for people: 4 significant digits, no float noise. */
    number(value, digits) {
      if (value == null || Number.isNaN(Number(value))) return "—";
      return String(Number(Number(value).toPrecision(digits || 4)));
    },
    count(value) {
      return value == null ? "—" : Number(value).toLocaleString("en-US");
    },
    score(run) {
      if (run.accuracy != null) return fmt.percent(run.accuracy);
      if (run.val_loss != null) return "loss " + fmt.number(run.val_loss);
      return "—";
    },
    layer(layer) {
      if (layer.out_features) return `${layer.type}(${layer.out_features})`;
      if (layer.out_channels) return `${layer.type}(${layer.out_channels}, ${layer.kernel_size}×${layer.kernel_size})`;
      if (layer.type === "MaxPool2d") return `${layer.type}(${layer.kernel_size})`;
      if (layer.type === "Dropout") return `${layer.type}(${layer.p})`;
      return layer.type;
    },
    architecture(arch) {
      if (!Array.isArray(arch)) return "";
      return arch.map((item) => (typeof item === "number" ? String(item) : fmt.layer(item))).join(" → ");
    },
    localTime(ts) {
      return new Date(ts * 1000).toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" });
    },
    unit(run) {
      // a scikit-learn run counts steps (trees grown, rows added), a network epochs
      return run.algorithm && run.algorithm !== "network" ? "steps" : "epochs";
    },
    /** Epochs (or steps) of this run; a resumed run counts from its checkpoint, as its progress does. */
    progressText(run) {
      if (run.status === "queued") return "queued";
      const start = run.start_epoch || 0;
      const total = Math.max(0, (run.total_epochs || 0) - start);
      const resumed = start ? `, resumed from epoch ${start}` : "";
      if (run.status === "running" && run.current_epoch) {
        return `epoch ${run.current_epoch - start} of ${total} · ${Math.floor(run.progress || 0)}%${resumed}`;
      }
      return `${Math.max(0, (run.epochs_done || start) - start)} / ${total} ${fmt.unit(run)}${resumed}`;
    },
  };

  // -- DOM ------------------------------------------------------------------------------

  const dom = {
    field(root, name) {
      return root.querySelector(`[data-field="${name}"]`);
    },
    setText(root, name, text) {
      const el = dom.field(root, name);
      if (el && el.textContent !== text) el.textContent = text;
    },
    setBadge(el, status) {
      if (!el) return;
      el.dataset.status = status;
      el.textContent = status;
    },
    cloneTemplate(id) {
      return document.getElementById(id).content.firstElementChild.cloneNode(true);
    },
    /** A progress bar made by the `progress_bar` macro. */
    setProgress(root, run, extra) {
      const bar = dom.field(root, "progress");
      if (!bar) return;
      const value = Math.max(0, Math.min(100, Number(run.progress) || 0));
      const text = fmt.progressText(run) + (extra || "");
      bar.setAttribute("aria-valuenow", value.toFixed(1));
      bar.setAttribute("aria-valuetext", text);
      bar.firstElementChild.style.width = value + "%";
      dom.setText(root, "progress_text", text);
    },
  };

  function notice(text, kind) {
    const box = document.createElement("div");
    box.className = "notice";
    box.dataset.kind = kind || "info";
    box.textContent = text;
    document.getElementById("notices").append(box);
    setTimeout(() => box.remove(), NOTICE_MS);
  }

  // -- forms ----------------------------------------------------------------------------

  /** Show `message` in the form's error box (empty hides it) and mark `input` invalid. */
  function showError(form, message, input) {
    const box = form.querySelector(".form-error");
    box.textContent = message || "";
    box.hidden = !message;
    form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
    if (input) {
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
  }

  /** The input a server error names (`detail.field`), if the form has one by that name. */
  function inputNamed(form, err) {
    const name = err && err.detail && err.detail.field;
    return name && form.elements[name] instanceof Element ? form.elements[name] : null;
  }

  /** Run `work` with the form's buttons disabled; a thrown error is shown in the form. */
  async function busy(form, work) {
    const buttons = Array.from(form.querySelectorAll("button"));
    buttons.forEach((b) => { b.disabled = true; });
    showError(form, "");
    try {
      return await work();
    } catch (err) {
      showError(form, err.message, err.input || inputNamed(form, err));
      return undefined;
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  }

  class InputError extends Error {
    constructor(message, input) {
      super(message);
      this.input = input;
    }
  }

  /**
   * A number from an input, checked before it is sent: undefined when empty (the server's
   * default applies). Options: integer, min, max, exclusiveMin, label.
   */
  function readNumber(form, name, options) {
    const opts = options || {};
    const input = form.elements[name];
    const label = opts.label || name;
    if (input.validity && input.validity.badInput) throw new InputError(`${label} must be a number.`, input);
    const text = String(input.value).trim();
    if (!text) return undefined;
    const value = Number(text);
    if (!Number.isFinite(value)) throw new InputError(`${label} must be a number.`, input);
    if (opts.integer && !Number.isInteger(value)) throw new InputError(`${label} must be a whole number.`, input);
    if (opts.min != null && (opts.exclusiveMin ? value <= opts.min : value < opts.min)) {
      throw new InputError(`${label} must be ${opts.exclusiveMin ? "greater than" : "at least"} ${opts.min}.`, input);
    }
    if (opts.max != null && value > opts.max) throw new InputError(`${label} must be at most ${opts.max}.`, input);
    return value;
  }

  // -- runs: state from events ------------------------------------------------------------

  /** How each run event changes a run as the REST API describes it. */
  const REDUCE = {
    run_created(run, p) {
      run.status = run.status || p.status || "queued";
      if (p.total_epochs != null) run.total_epochs = p.total_epochs;
    },
    training_started(run, p) {
      run.status = "running";
      run.total_epochs = p.total_epochs;
      run.start_epoch = p.start_epoch;
      run.epochs_done = p.start_epoch || 0;
      run.dataset_id = p.dataset_id || run.dataset_id;
      run.progress = 0;
    },
    training_progress(run, p) {
      run.status = "running";
      run.current_epoch = p.epoch;
      run.total_epochs = p.total_epochs;
      run.progress = p.progress;
      run.train_loss = p.train_loss;
      if (p.learning_rate != null) run.learning_rate = p.learning_rate;
    },
    training_update(run, p) {
      run.status = "running";
      run.current_epoch = null;
      run.epochs_done = p.epoch;
      run.total_epochs = p.total_epochs;
      run.progress = p.progress;
      if (p.accuracy !== undefined) run.accuracy = p.accuracy;
      run.train_loss = p.train_loss;
      run.val_loss = p.val_loss;
      if (p.learning_rate != null) run.learning_rate = p.learning_rate;
      if (p.best_epoch != null) run.best_epoch = p.best_epoch;
    },
    training_complete(run, p) {
      run.status = "completed";
      run.current_epoch = null;
      run.progress = 100;
      run.total_epochs = p.total_epochs || run.total_epochs;
      // an early-stopped run ends before its last epoch
      run.epochs_done = p.epochs_done != null ? p.epochs_done : run.total_epochs;
      if (p.stop_reason !== undefined) run.stop_reason = p.stop_reason;
      if (p.best_epoch !== undefined) run.best_epoch = p.best_epoch;
      if (p.accuracy !== undefined) run.accuracy = p.accuracy;
      if (p.val_loss !== undefined) run.val_loss = p.val_loss;
      if (p.version) run.version = p.version;
    },
    training_error(run, p) {
      run.status = "failed";
      run.current_epoch = null;
      run.error = p.error;
    },
    training_cancelled(run, p) {
      run.status = "cancelled";
      run.current_epoch = null;
      if (p.epochs_done != null) run.epochs_done = p.epochs_done;
    },
    training_interrupted(run, p) {
      run.status = "interrupted";
      run.current_epoch = null;
      run.error = p.error;
    },
    weights_update() {},
    training_stats() {},
    run_log() {},
  };

  function runStub(payload) {
    return {
      run_id: payload.run_id, job_id: payload.run_id, network_id: payload.network_id || null,
      algorithm: payload.algorithm || null, experiment_id: payload.experiment_id || null,
      dataset_id: payload.dataset_id || null, status: null, progress: 0,
      epochs_done: payload.start_epoch || 0, start_epoch: payload.start_epoch || 0,
      total_epochs: payload.total_epochs || null, accuracy: null, val_loss: null, error: null,
      created_at: payload.ts, last_seq: 0, seq: 0,
    };
  }

  /**
   * The runs a page shows, kept current from their events.
   *
   * options.onEvent(name, payload, run): after an event has been applied to `run` (also for
   *   events fetched after a reconnect, in order);
   * options.monitor: true to hear the monitor's events and the log lines too (weights_update,
   *   training_stats, run_log);
   * options.accept(payload): whether a run this page has not seen yet belongs on it (a run
   *   started from a script on the dashboard, in this experiment...). Its stored history is
   *   then fetched, so nothing before the first live event is missed.
   */
  class RunFeed {
    constructor(live, options) {
      this.live = live;
      this.onEvent = options.onEvent || (() => {});
      this.accept = options.accept || (() => false);
      this.monitor = Boolean(options.monitor);
      this.runs = new Map();
      this.holding = new Map(); // run id -> live events held back while its history is fetched
      this.retrying = new Set(); // run ids whose cut-off catch-up is asked again soon
      RUN_EVENT_NAMES.forEach((name) => live.on(name, (payload) => this.receive(name, payload)));
      // From the moment the socket (re)connects, hold back the live events of every run still
      // going: with broadcasting on they arrive before the rooms are joined and the missed ones
      // fetched, and applying one first would move `seq` past those (a gap in a chart).
      live.on("connect", () => {
        for (const run of this.runs.values()) {
          if (!FINAL.has(run.status) && !this.holding.has(run.run_id)) this.holding.set(run.run_id, []);
        }
      });
      live.onConnect(() => this.catchUpAll());
      // Events can be lost while the socket stays up (several server nodes: the message queue
      // restarting). A run in training that has been silent for a while is asked for its stored
      // events; so is one whose next event skips a `seq` (see receive).
      setInterval(() => this.sweep(), SILENT_RUN_MS);
    }

    sweep() {
      const now = Date.now();
      for (const run of this.runs.values()) {
        if (run.status === "running" && !this.holding.has(run.run_id) && now - (run.heardAt || now) > SILENT_RUN_MS) {
          run.heardAt = now;
          this.catchUp(run);
        }
      }
    }

    /**
     * Track a run as the REST API returned it (its `last_seq` says which events it already
     * reflects). While the run's missed events are being fetched, its state is taken but its
     * `seq` is not moved, so those events still reach `onEvent` (a chart needs every one).
     */
    add(run) {
      const known = this.runs.get(run.run_id);
      if (known && known.seq > (run.last_seq || 0)) return known; // this page has seen newer events
      const seq = known && this.holding.has(run.run_id) ? known.seq : run.last_seq || 0;
      const tracked = Object.assign(known || {}, run, { seq, heardAt: Date.now() });
      this.runs.set(run.run_id, tracked);
      this.follow(tracked);
      if (!known && ACTIVE.has(tracked.status)) refreshStatus(); // the header counts it
      return tracked;
    }

    /**
     * Join a run's room while it may still produce events: with broadcasting off
     * (LIVETRAIN_BROADCAST_EVENTS=false) that is the only way its events reach this page.
     */
    follow(run) {
      if (FINAL.has(run.status)) return Promise.resolve();
      return this.live.subscribe({ run_id: run.run_id });
    }

    get(runId) {
      return this.runs.get(runId);
    }

    receive(name, payload) {
      if (!payload || !payload.run_id) return;
      const held = this.holding.get(payload.run_id);
      if (held) {
        held.push([name, payload]);
        return;
      }
      let run = this.runs.get(payload.run_id);
      if (!run) {
        if (!this.accept(payload)) return;
        run = runStub(payload);
        this.runs.set(run.run_id, run);
        this.holding.set(run.run_id, [[name, payload]]);
        // join its room first, then fetch its history: nothing can fall in between
        this.follow(run).then(() => this.catchUp(run));
        return;
      }
      if (typeof payload.seq === "number" && run.seq > 0 && payload.seq > run.seq + 1) {
        // a gap: fetch what is stored in between before applying this one
        this.holding.set(run.run_id, [[name, payload]]);
        this.catchUp(run);
        return;
      }
      this.apply(run, name, payload);
    }

    apply(run, name, payload) {
      run.heardAt = Date.now();
      if (typeof payload.seq === "number") {
        if (payload.seq <= run.seq) return; // already applied
        run.seq = payload.seq;
      }
      REDUCE[name](run, payload);
      if (MONITOR_EVENT_NAMES.includes(name)) {
        if (this.monitor) this.onEvent(name, payload, run);
        return;
      }
      if (name === "run_created" || FINAL.has(run.status)) refreshStatus();
      if (FINAL.has(run.status)) this.live.unsubscribe({ run_id: run.run_id });
      this.onEvent(name, payload, run);
    }

    /** Fetch a run's stored events after the last one applied, holding live ones back meanwhile. */
    async catchUp(run) {
      if (!this.holding.has(run.run_id)) this.holding.set(run.run_id, []);
      let body = null;
      try {
        body = await api("GET", `${path("api", "runs", run.run_id, "events")}?after_seq=${run.seq}`);
      } catch (err) {
        if (err.code === "unreachable") {
          // cut off, like the socket: keep holding the live events (applying them would move
          // `seq` past the missed ones, a gap for good) and ask again shortly
          this.retry(run);
          return;
        }
        console.warn("livetrain: could not fetch the events of run", run.run_id, err.message);
      }
      for (const event of body ? body.events : []) {
        const { event: name, ...payload } = event;
        if (REDUCE[name]) this.apply(run, name, payload);
      }
      const held = this.holding.get(run.run_id) || [];
      this.holding.delete(run.run_id);
      held.forEach(([name, payload]) => this.apply(run, name, payload));
    }

    /** One more catch-up of a run in a second, unless one is already due. */
    retry(run) {
      if (this.retrying.has(run.run_id)) return;
      this.retrying.add(run.run_id);
      setTimeout(() => {
        this.retrying.delete(run.run_id);
        this.catchUp(run);
      }, 1000);
    }

    /** After a (re)connect: every run that was still going may have moved on meanwhile. */
    catchUpAll() {
      for (const run of this.runs.values()) {
        if (!FINAL.has(run.status)) this.catchUp(run);
      }
    }
  }

  // -- run tables -------------------------------------------------------------------------------

  /**
   * A `runs_table` (templates/macros.html) kept current: rows of runs the feed updates are
   * redrawn; new runs the page accepts are inserted newest first, keeping at most `max` rows.
   * options: names (Map network id -> name), max, insert (false on a page other than the first).
   */
  class RunTable {
    constructor(root, options) {
      this.root = root;
      this.body = root.querySelector("tbody[data-runs]");
      this.empty = root.querySelector("[data-runs-empty]");
      this.options = Object.assign({ names: new Map(), max: 20, insert: true }, options);
    }

    row(runId) {
      return this.body.querySelector(`tr[data-run-id="${CSS.escape(runId)}"]`);
    }

    trainer(run) {
      if (!run.network_id) return run.algorithm || "—";
      return this.options.names.get(run.network_id) || run.network_id;
    }

    render(run) {
      let row = this.row(run.run_id);
      if (!row) {
        if (!this.options.insert) return;
        row = dom.cloneTemplate("run-template");
        row.dataset.runId = run.run_id;
        this.body.insertBefore(row, this.body.firstElementChild);
        Array.from(this.body.children).slice(this.options.max).forEach((old) => {
          if (!ACTIVE.has(old.dataset.status)) old.remove();
        });
        dom.field(row, "run_link").href = path("runs", run.run_id);
        dom.setText(row, "trainer", this.trainer(run));
        dom.field(row, "progress").setAttribute("aria-label", `Progress of run ${run.run_id}`);
      }
      row.dataset.status = run.status;
      dom.setText(row, "run_id", run.run_id);
      if (run.dataset_id) {
        dom.setText(row, "dataset_id", run.dataset_id);
        dom.field(row, "dataset_link").href = path("datasets", run.dataset_id);
      }
      dom.setBadge(dom.field(row, "status"), run.status);
      const error = dom.field(row, "error");
      error.hidden = !run.error;
      error.textContent = run.error || "";
      dom.setProgress(row, run);
      dom.setText(row, "score", fmt.score(run));
      const time = dom.field(row, "created_at");
      if (run.created_at && !time.textContent.trim()) {
        time.dateTime = new Date(run.created_at * 1000).toISOString();
      }
      if (run.created_at) dom.setText(row, "created_at", fmt.localTime(run.created_at));
      renderStopButton(row.querySelector('[data-action="stop"]'), run);
      if (this.empty) this.empty.hidden = this.body.children.length > 0;
    }
  }

  // -- stopping a run ---------------------------------------------------------------------------

  const stopping = new Set(); // run ids whose cancel was asked for and has not landed yet

  function renderStopButton(button, run) {
    if (!button) return;
    if (run && !ACTIVE.has(run.status)) stopping.delete(run.run_id);
    button.hidden = !run || !ACTIVE.has(run.status);
    button.dataset.runId = run ? run.run_id : "";
    const pending = Boolean(run) && stopping.has(run.run_id);
    button.disabled = pending;
    button.textContent = pending ? "Stopping…" : "Stop";
  }

  /** Ask the server to stop a run; its `training_cancelled` event redraws the page. */
  async function stopRun(runId, button) {
    stopping.add(runId);
    if (button) {
      button.disabled = true;
      button.textContent = "Stopping…";
    }
    try {
      return await api("POST", `${path("api", "runs", runId, "cancel")}`);
    } catch (err) {
      stopping.delete(runId);
      if (button) {
        button.disabled = false;
        button.textContent = "Stop";
      }
      notice(`Could not stop run ${runId}: ${err.message}`, "error");
      return null;
    }
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest('button[data-action="stop"]');
    if (button && button.dataset.runId) stopRun(button.dataset.runId, button);
  });

  // -- the header's counts ----------------------------------------------------------------------

  let statusTimer = null;
  /** Refresh the header's network and active-run counts (soon, once for a burst of events). */
  function refreshStatus() {
    clearTimeout(statusTimer);
    statusTimer = setTimeout(async () => {
      try {
        const status = await api("GET", "/api/status");
        document.getElementById("network-count").textContent = status.active_networks;
        document.getElementById("active-count").textContent = status.training_jobs;
      } catch (err) {
        console.warn("livetrain: status refresh failed:", err.message);
      }
    }, 200);
  }

  // -- the connection ------------------------------------------------------------------------

  function setConnection(state, text) {
    const el = document.getElementById("connection");
    if (!el) return;
    el.dataset.state = state;
    el.textContent = text;
  }

  /**
   * Connect to the server. `rooms` are joined on every connect (e.g. [{run_id: "..."}]);
   * returns { on(event, fn), onConnect(fn), subscribe(room), unsubscribe(room), broadcast }.
   */
  function connect(rooms) {
    const wanted = new Map((rooms || []).map((room) => [JSON.stringify(room), room]));
    const connectHandlers = [];
    const live = {
      socket: null,
      broadcast: true,
      on(event, fn) {
        if (this.socket) this.socket.on(event, fn);
      },
      onConnect(fn) {
        connectHandlers.push(fn);
      },
      /** Join a room now (if connected) and after every reconnect; resolves once the server has acknowledged. */
      subscribe(room) {
        const key = JSON.stringify(room);
        const fresh = !wanted.has(key);
        wanted.set(key, room);
        return fresh && this.socket && this.socket.connected ? join(room) : Promise.resolve();
      },
      unsubscribe(room) {
        if (!wanted.delete(JSON.stringify(room))) return;
        if (this.socket && this.socket.connected) this.socket.emit("unsubscribe", room);
      },
    };
    function join(room) {
      return new Promise((resolve) => {
        live.socket.emit("subscribe", room, (ack) => {
          if (!ack || !ack.ok) console.warn("livetrain: subscribe failed", room, ack);
          resolve();
        });
      });
    }
    if (typeof window.io !== "function") {
      setConnection("offline", "Live updates unavailable");
      return live;
    }
    live.socket = window.io({ transports: ["websocket", "polling"] });
    window.livetrain.connection = live; // the page's connection, for the console and the browser tests
    live.socket.on("connect", () => {
      setConnection("live", "Live");
      // Join first, then fetch what was missed: nothing can fall in between.
      Promise.all(Array.from(wanted.values(), join)).then(() => connectHandlers.forEach((fn) => fn()));
    });
    live.socket.on("disconnect", () => setConnection("offline", "Offline: reconnecting…"));
    live.socket.on("connect_error", (err) => {
      if (err && err.data && err.data.error === "unauthorized") {
        // refused for its token (signed out, or the token was revoked): no retry will help
        setConnection("offline", "Signed out");
        const next = encodeURIComponent(window.location.pathname + window.location.search);
        const box = document.createElement("div");
        box.className = "notice";
        box.dataset.kind = "error";
        const link = document.createElement("a");
        link.href = `/login?next=${next}`;
        link.textContent = "sign in again";
        box.append("Live updates stopped: ", link, ".");
        document.getElementById("notices").append(box);
        return;
      }
      setConnection("offline", "Offline: reconnecting…");
    });
    live.socket.on("server_info", (info) => {
      live.broadcast = info.broadcast_events !== false;
    });
    return live;
  }

  /** The JSON a template embedded in <script type="application/json" id=...>. */
  function embedded(id) {
    const el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  window.livetrain = {
    ACTIVE, FINAL, ApiError, InputError, api, csrfToken, path, fmt, dom, notice, showError, busy, readNumber,
    RunFeed, RunTable, connect, embedded, renderStopButton, stopRun, refreshStatus,
  };
})();
