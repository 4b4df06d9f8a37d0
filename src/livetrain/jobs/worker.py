"""A worker process: receives jobs over a socket, trains, reports every step back.

Started by `WorkerPool` as `python -m livetrain.jobs.worker --fd N`, or forked from the worker
template (`livetrain.jobs.template`) with everything imported already. It imports torch once
and then serves jobs one after another. A reader thread takes `cancel`, `threads` and `exit`
while the main thread trains, so cancellation and a new share of the cores land between two
mini-batches.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import queue
import socket
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from livetrain.jobs.protocol import (
    Cancel,
    Cancelled,
    ChannelClosed,
    Completed,
    Epoch,
    Exit,
    Failed,
    LogLine,
    NetworkJob,
    Prepared,
    PrepareJob,
    Progress,
    Ready,
    Refused,
    RunJob,
    SetThreads,
    SklearnJob,
    StageReached,
    Started,
    Step,
    TrainingStats,
    WeightsUpdate,
    Wire,
    decode,
    recv_message,
    send_message,
)


class Channel:
    """The worker's end of the socket; sends are serialized by a lock."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._lock = threading.Lock()

    def send(self, message: Wire) -> None:
        with self._lock:
            send_message(self.sock, message.to_wire())


def _cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


class OthersLoad:
    """How many cores the processes other than this one keep busy, from /proc/stat (Linux), between
    two looks; None where there is no /proc/stat."""

    def __init__(self, cores: int) -> None:
        self.cores = cores
        self._last: tuple[float, float, float, float] | None = None

    @staticmethod
    def _sample() -> tuple[float, float, float, float] | None:
        try:
            with open("/proc/stat", "rb") as fh:
                fields = [int(x) for x in fh.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        own = os.times()
        return float(sum(fields)), float(idle), own.user + own.system, time.monotonic()

    def busy_cores(self) -> float | None:
        """Cores the others used since the last call (None on the first call or without /proc)."""
        now = self._sample()
        last, self._last = self._last, now
        if now is None or last is None or now[0] <= last[0] or now[3] <= last[3]:
            return None
        busy_all = (1.0 - (now[1] - last[1]) / (now[0] - last[0])) * self.cores
        ours = (now[2] - last[2]) / (now[3] - last[3])
        return max(0.0, busy_all - ours)


def free_threads(cores: int, others_busy: float) -> int:
    """Threads worth using when other processes keep `others_busy` cores busy: a core counts as free
    only if the others use less than 0.4 of it. Two OpenMP threads on a core someone else wants wait
    on each other at every parallel step (2-thread epochs measured several to tens of times slower
    than 1 thread on a busy machine), so this errs towards fewer threads."""
    return max(1, min(cores, math.floor(cores - others_busy + 0.4)))


class ThreadBudget:
    """How many torch threads this worker's run uses.

    The reader thread sets `wanted`, the run's share of the cores (from the job, then from each
    `threads` message, in the order they came). With `adapt`, the training thread also looks about
    twice a second at how busy the machine is with other processes and uses fewer threads while
    they would have to share cores with them. The training thread applies the count between two
    mini-batches, since torch's thread count belongs to the thread that computes.
    """

    LOOK_EVERY = 0.5  # seconds between two looks at the machine's load
    FIRST_LOOK = 0.1  # seconds after a run's start (its data and model load meanwhile)

    def __init__(self, cores: int | None = None) -> None:
        self.wanted = 1
        self.applied = 0
        self.adapt = True
        self.cores = cores or _cores()
        self.free: int | None = None  # threads the other processes leave room for, when last looked
        self._load = OthersLoad(self.cores)
        self._next_look = 0.0

    def start(self, adapt: bool) -> None:
        """A new run: forget the last run's look at the load, and start the first one now."""
        self.adapt, self.free = adapt, None
        self._load = OthersLoad(self.cores)
        if adapt:
            self._load.busy_cores()  # the starting point of the first look
        self._next_look = time.monotonic() + self.FIRST_LOOK
        self.apply()

    def check(self) -> None:
        """Between two mini-batches: one clock read unless a look is due or the share changed."""
        if self.adapt:
            now = time.monotonic()
            if now >= self._next_look:
                self._next_look = now + self.LOOK_EVERY
                others = self._load.busy_cores()
                if others is not None:
                    self.free = free_threads(self.cores, others)
        if self.target != self.applied:
            self.apply()

    @property
    def target(self) -> int:
        """The thread count to use now."""
        wanted = max(1, self.wanted)
        return min(wanted, self.free) if self.adapt and self.free is not None else wanted

    def apply(self) -> None:
        """Use the target count now."""
        import torch

        target = self.target
        if target != self.applied:
            torch.set_num_threads(target)
            self.applied = target


class JobCallbacks:
    """Turns trainer callbacks into checkpoint files and messages to the server; also the monitor's
    sink (`livetrain.training.monitor.MonitorSink`): its samples and log lines go the same way."""

    def __init__(self, channel: Channel, job: NetworkJob, cancel: threading.Event, store, held_out_split: str,
                 budget: ThreadBudget | None = None) -> None:
        self.channel = channel
        self.job = job
        self.held_out_split = held_out_split
        self.cancel = cancel
        self.store = store
        self.budget = budget or ThreadBudget()
        self.checkpoints: list[str] = []
        self.monitor = None  # the run's Monitor, whose epoch this moves
        self.refs: dict[int, dict[str, Any]] = {}  # epoch -> its checkpoint's FileRef, while the file is kept
        self.best_epoch: int | None = None

    def on_weights(self, update: dict[str, Any]) -> None:
        self.channel.send(WeightsUpdate(**update))

    def on_stats(self, stats: dict[str, Any]) -> None:
        self.channel.send(TrainingStats(**stats))

    def on_log(self, level: str, message: str, source: str = "monitor", data: dict[str, Any] | None = None) -> None:
        self.channel.send(LogLine(level=level, message=message, source=source, time=time.time(), data=data))

    def should_stop(self) -> bool:
        """Asked between every two mini-batches: also where a new share of the cores takes effect."""
        self.budget.check()
        return self.cancel.is_set()

    def on_progress(self, epoch: int, batch: int, n_batches: int, train_loss: float, learning_rate: float) -> None:
        self.channel.send(Progress(epoch=epoch, batch=batch, batches=n_batches, train_loss=_finite(train_loss),
                                   learning_rate=learning_rate))

    def on_epoch_end(self, result, checkpoint: dict[str, Any]) -> None:
        import torch

        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        relpath = f"{self.job.artifact_dir}/checkpoint-{result.epoch:05d}.pt"
        ref = self.store.write_bytes(relpath, buffer.getvalue())
        self.checkpoints.append(relpath)
        self.refs[result.epoch] = {"path": ref.path, "sha256": ref.sha256, "epoch": result.epoch}
        self.best_epoch = result.best_epoch
        # keep the newest ones, and with early stopping the best epoch's too: it becomes the run's model
        best = f"{self.job.artifact_dir}/checkpoint-{self.best_epoch:05d}.pt" if self.best_epoch else None
        prunable = [path for path in self.checkpoints if path != best]
        while len(prunable) > self.job.keep_checkpoints:
            gone = prunable.pop(0)
            self.checkpoints.remove(gone)
            self.store.delete(gone)
            self.refs = {e: r for e, r in self.refs.items() if r["path"] != gone}
        if self.monitor is not None:
            self.monitor.epoch = result.epoch + 1
        self.channel.send(Epoch(
            held_out_split=self.held_out_split,
            epoch=result.epoch,
            total_epochs=result.total_epochs,
            train_loss=_finite(result.train_loss),
            val_loss=_finite(result.val_loss),
            accuracy=result.accuracy,
            correct=result.correct,
            total=result.total,
            elapsed_time=result.elapsed_time,
            eval_time=result.eval_time,
            extra={k: _finite(v) for k, v in result.extra.items()},
            checkpoint={"path": ref.path, "sha256": ref.sha256, "epoch": result.epoch},
            learning_rate=result.learning_rate,
            best_epoch=result.best_epoch,
            threads=torch.get_num_threads(),
        ))
        self.on_log("debug", f"checkpoint of epoch {result.epoch} written ({len(buffer.getbuffer()) / 1e6:.2f} MB)",
                    "worker")


def _finite(value: float | None) -> float | None:
    if value is None or value != value or value in (float("inf"), float("-inf")):
        return None
    return float(value)


def load_verified_torch(store, ref: dict[str, Any]) -> dict[str, Any]:
    """A torch file from the artifact store, after its SHA-256 check, tensors only."""
    import torch

    return torch.load(store.open_verified(ref["path"], ref["sha256"]), map_location="cpu", weights_only=True)


def load_job_data(job: RunJob, store):
    """The arrays of the job's dataset: a built-in by id, a stored one from its checksummed files."""
    from livetrain.data.stored import load_arrays
    from livetrain.store.entities import Dataset

    return load_arrays(Dataset(**job.dataset), job.mnist_dir, store)


def run_job(channel: Channel, job: RunJob, cancel: threading.Event, budget: ThreadBudget | None = None) -> None:
    """Train one job and report how it ended."""
    if budget is None:
        budget = ThreadBudget()
        budget.wanted = job.torch_threads
    budget.start(job.adapt_threads)
    if isinstance(job, SklearnJob):
        run_sklearn_job(channel, job, cancel, budget)
    else:
        run_network_job(channel, job, cancel, budget)


def run_prepare_job(channel: Channel, job: PrepareJob) -> None:
    """Prepare an uploaded file into a dataset's files; report each stage, then the result or the refusal."""
    import pyarrow

    from livetrain.data.prepare import prepare_upload
    from livetrain.errors import LivetrainError

    # The worker's thread variables are set for one run's share of the cores, and Arrow's pool
    # follows OMP_NUM_THREADS; a file is read with every core (no run shares this worker).
    pyarrow.set_cpu_count(os.cpu_count() or 1)
    try:
        result = prepare_upload(job.spec, lambda stage: channel.send(StageReached(stage)), overlap=True)
    except LivetrainError as exc:  # the user's file: the same 4xx as when the server prepares it
        channel.send(Refused(code=exc.code, status=exc.status_code, message=exc.message, detail=exc.detail))
        return
    channel.send(Prepared(result))


class StepReporter:
    """Turns a scikit-learn run's steps into messages to the server."""

    def __init__(self, channel: Channel, cancel: threading.Event) -> None:
        self.channel = channel
        self.cancel = cancel

    def should_stop(self) -> bool:
        return self.cancel.is_set()

    def on_step(self, result) -> None:
        self.channel.send(Step(
            step=result.step, total_steps=result.total_steps, size=result.size, size_label=result.size_label,
            train=result.train, held_out=result.val, held_out_split=result.held_out_split,
            loss=_finite(result.loss), elapsed_time=result.elapsed_time, eval_time=result.eval_time,
        ))


def run_sklearn_job(channel: Channel, job: SklearnJob, cancel: threading.Event, budget: ThreadBudget) -> None:
    """Train a scikit-learn algorithm in live steps; write its model with joblib; report the final metrics.

    Its thread count is the one it starts with: scikit-learn's `n_jobs` is fixed for a fit.
    """
    import joblib

    from livetrain.store.artifacts import ArtifactStore
    from livetrain.training.estimators import train_estimator

    threads = budget.applied
    store = ArtifactStore(Path(job.models_dir))
    data = load_job_data(job, store)
    channel.send(Started(pid=os.getpid(), start_epoch=0, total_epochs=job.steps, n_train=len(data.X_train),
                         n_val=len(data.X_val) if data.has_val else 0, n_test=len(data.X_test), device="cpu"))
    outcome = train_estimator(job.algorithm, job.task, job.params, job.seed, data,
                              StepReporter(channel, cancel), steps=job.steps, n_jobs=threads)
    if outcome.stopped:
        channel.send(Cancelled(outcome.steps_done))
        return
    if data.info.meta.get("kind") == "factorization":
        add_factorization_rates(outcome.final, data, outcome.model.predict)
    buffer = io.BytesIO()
    joblib.dump(outcome.model, buffer)
    model = store.write_bytes(f"{job.artifact_dir}/model.joblib", buffer.getvalue())
    channel.send(Completed(final=outcome.final, epochs_done=outcome.steps_done, importances=outcome.feature_importances,
                           warnings=outcome.warnings, model={"path": model.path, "sha256": model.sha256}))


def run_network_job(channel: Channel, job: NetworkJob, cancel: threading.Event, budget: ThreadBudget) -> None:
    """Train a torch network, checkpointing every epoch; report the final metrics on every split.

    With early stopping the model it reports (weights, examples, final metrics) is its best epoch's.
    """
    import torch

    from livetrain.store.artifacts import ArtifactStore
    from livetrain.training.device import describe, resolve_device
    from livetrain.training.examples import collect_examples
    from livetrain.training.model import build_model
    from livetrain.training.spec import HyperParams, NetworkSpec
    from livetrain.training.trainer import make_engine, plain_state_dict, train

    store = ArtifactStore(Path(job.models_dir))
    data = load_job_data(job, store)
    spec = NetworkSpec.from_dict(job.spec)
    hp = HyperParams.from_dict(job.hyperparams)
    model = build_model(spec, data.info.input_shape, data.info.task, data.info.n_classes,
                        max_parameters=job.max_parameters, n_outputs=data.n_outputs)
    start_epoch, optimizer_state, schedule_state, stopping_state = 0, None, None, None
    if job.init:
        state = load_verified_torch(store, job.init)
        model.load_state_dict(state["model"])
        start_epoch = int(state.get("epoch", 0))
        optimizer_state = state.get("optimizer") or None
        schedule_state = state.get("lr_schedule")
        stopping_state = state.get("early_stopping")
        if optimizer_state and hp.optimizer != state.get("hyperparams", {}).get("optimizer"):
            optimizer_state = None  # a different optimizer starts with fresh state
    engine = make_engine(model, spec, hp, data, optimizer_state, device=resolve_device(job.device))
    channel.send(Started(pid=os.getpid(), start_epoch=start_epoch, total_epochs=start_epoch + hp.epochs,
                         n_train=len(data.X_train), n_val=len(data.X_val) if data.has_val else 0,
                         n_test=len(data.X_test), device=describe(engine.device)))
    held_out = "val" if data.has_val else "test"
    callbacks = JobCallbacks(channel, job, cancel, store, held_out, budget)
    start_monitor(engine, model, hp, callbacks, start_epoch, job.torch_threads)
    outcome = train(model, spec, hp, data, callbacks, start_epoch=start_epoch, schedule_state=schedule_state,
                    stopping_state=stopping_state, progress_interval=job.progress_interval, engine=engine)
    if outcome.stopped:
        channel.send(Cancelled(outcome.epochs_done))
        return
    buffer = io.BytesIO()
    # CPU tensors: the downloaded weights load on any machine, GPU or not
    torch.save({"state_dict": plain_state_dict(model), "architecture": spec.to_dict(),
                "dataset_id": job.dataset_id}, buffer)
    weights = store.write_bytes(f"{job.artifact_dir}/weights.pt", buffer.getvalue())
    examples = store.write_bytes(f"{job.artifact_dir}/examples.json",
                                 json.dumps(collect_examples(engine, model, data)).encode())
    final = network_final_metrics(engine, spec, data)
    # the model's scores: its best epoch's with early stopping (the weights it holds now), else the last's
    scored = outcome.best or outcome.last
    if outcome.best is not None and held_out in final:
        final[held_out]["loss"] = _finite(outcome.best.val_loss)
    channel.send(Completed(
        final=final,
        epochs_done=outcome.epochs_done,
        accuracy=scored.accuracy if scored else None,
        val_loss=_finite(scored.val_loss) if scored else None,
        train_loss=_finite(scored.train_loss) if scored else None,
        weights={"path": weights.path, "sha256": weights.sha256},
        examples={"path": examples.path, "sha256": examples.sha256},
        best_epoch=outcome.best_epoch,
        best_checkpoint=callbacks.refs.get(outcome.best_epoch) if outcome.best_epoch else None,
        stop_reason=outcome.stop_reason,
    ))


def start_monitor(engine, model, hp, callbacks: JobCallbacks, start_epoch: int, threads: int) -> None:
    """Give the engine the run's monitor when the run wants one (`livetrain.training.monitor`), and say
    in the run's log what trains where."""
    from livetrain.training.model import parameter_count
    from livetrain.training.monitor import Monitor, MonitorOptions

    options = MonitorOptions.from_dict(hp.extra.get("monitor"))
    callbacks.on_log("debug", f"model: {parameter_count(model):,} parameters; {threads} torch "
                              f"thread{'' if threads == 1 else 's'}; device {engine.device}", "worker")
    if not options.enabled or not hasattr(engine, "monitor"):
        callbacks.on_log("debug", "monitor: off", "monitor")
        return
    monitor = Monitor(callbacks, every=options.every, explode_above=options.explode_above,
                      vanish_below=options.vanish_below, model=model)
    monitor.epoch = start_epoch + 1
    engine.monitor = callbacks.monitor = monitor
    rate = (f"every {options.every} step{'' if options.every == 1 else 's'}" if options.every
            else f"at most every {monitor.min_interval:g} s")
    callbacks.on_log("debug", f"monitor: on, sampling the layers {rate}", "monitor")


def network_final_metrics(engine, spec, data) -> dict[str, Any]:
    """The trained network scored on every split with the same metrics as the scikit-learn runs."""
    import numpy as np

    from livetrain.training.metrics import classification_metrics, factorization_rate, regression_metrics

    out = {}
    for split in ("train", "val", "test"):
        y = getattr(data, f"y_{split}")
        if y is None or len(y) == 0:
            continue
        if data.info.task == "sequence":  # scored in chunks: a language model's logits over a split are large
            loss, _, accuracy, extra = engine.evaluate(split)
            out[split] = {"loss": loss, "token_accuracy": accuracy, "perplexity": extra["perplexity"]}
            out[split].update(text_final_scores(extra))
            continue
        outputs = engine.predict_split(split)
        if data.info.task == "classification":
            proba = None
            if spec.kind == "layers" and spec.loss == "cross_entropy":
                shifted = np.exp(outputs - outputs.max(axis=1, keepdims=True))
                proba = shifted / shifted.sum(axis=1, keepdims=True)
            out[split] = classification_metrics(y, outputs.argmax(axis=1), proba, n_classes=data.info.n_classes)
        else:
            predicted = data.unscale_target(outputs.reshape(y.shape))
            out[split] = regression_metrics(data.unscale_target(y), predicted)
            if data.info.meta.get("kind") == "factorization":
                out[split]["factorized"] = factorization_rate(getattr(data, f"X_{split}"), predicted)
        if data.info.meta.get("text"):  # a text dataset's own metrics too (f1 as text datasets define it)
            from livetrain.training.text_metrics import epoch_scores

            out[split].update(epoch_scores(engine, split, getattr(data, f"X_{split}"), y, outputs))
    return out


def text_final_scores(extra: dict[str, Any]) -> dict[str, Any]:
    """The generated-text metrics among a sequence dataset's scores (exact match, token F1, ROUGE)."""
    from livetrain.training.text_metrics import GENERATED_METRICS

    return {k: v for k, v in extra.items() if k in GENERATED_METRICS}


def add_factorization_rates(final: dict[str, Any], data, predict) -> None:
    """On factorization data, add to each split the share of numbers whose predicted factors multiply back."""
    from livetrain.training.metrics import factorization_rate

    for split, scores in final.items():
        X = getattr(data, f"X_{split}")
        scores["factorized"] = factorization_rate(X, data.unscale_target(predict(X).reshape(len(X), -1)))


def preload() -> None:
    """Import what jobs need, up front: that is what makes a warm worker warm (for a run, and for a
    big upload: the readers and the preparation). The worker template imports the same before it forks."""
    import clevercsv  # noqa: F401
    import pyarrow.csv  # noqa: F401
    import pyarrow.parquet  # noqa: F401
    import sklearn.model_selection  # noqa: F401  (the built-in datasets' splits)

    import livetrain.data.prepare  # noqa: F401
    import livetrain.data.reading  # noqa: F401
    import livetrain.data.sources  # noqa: F401
    import livetrain.data.stored  # noqa: F401
    import livetrain.training.estimators  # noqa: F401
    import livetrain.training.examples  # noqa: F401
    import livetrain.training.trainer  # noqa: F401


def serve(sock: socket.socket) -> None:
    """Serve jobs until the server says exit or goes away."""
    preload()  # before saying ready (a forked worker has it already)
    channel = Channel(sock)
    jobs: queue.Queue = queue.Queue()
    cancel = threading.Event()
    budget = ThreadBudget()

    def read_commands() -> None:
        try:
            while True:
                command = decode(recv_message(sock))
                if isinstance(command, RunJob):
                    cancel.clear()
                    budget.wanted = max(1, command.torch_threads)
                    jobs.put(command)
                elif isinstance(command, SetThreads):
                    budget.wanted = max(1, command.threads)
                elif isinstance(command, PrepareJob):
                    jobs.put(command)
                elif isinstance(command, Cancel):
                    cancel.set()
                elif isinstance(command, Exit):
                    break
        except (ChannelClosed, OSError, ValueError):
            pass
        cancel.set()
        jobs.put(None)

    threading.Thread(target=read_commands, name="livetrain-worker-commands", daemon=True).start()
    try:
        channel.send(Ready(pid=os.getpid(), at=time.time()))
    except OSError:  # the server closed before this worker was ready: nothing to serve
        return
    while True:
        job = jobs.get()
        if job is None:
            return
        try:
            if isinstance(job, PrepareJob):
                run_prepare_job(channel, job)
            else:
                run_job(channel, job, cancel, budget)
        except (ChannelClosed, BrokenPipeError, ConnectionResetError):
            return
        except Exception as exc:  # every job ends: the server records why it failed
            try:
                channel.send(Failed(f"{type(exc).__name__}: {exc}", traceback.format_exc()))
            except OSError:
                return


def main(argv: list[str] | None = None) -> int:
    """Entry point of the worker process."""
    parser = argparse.ArgumentParser(prog="livetrain-worker")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--nice", type=int, default=0, help="lower this process's CPU priority by N")
    args = parser.parse_args(argv)
    serve_fd(args.fd, args.nice)
    return 0


def serve_fd(fd: int, nice: int = 0) -> None:
    """Serve on the socket `fd` at `nice` lower priority: a started worker, or one forked by the template."""
    if nice > 0:
        os.nice(nice)
    sock = socket.socket(fileno=fd)
    sock.setblocking(True)  # a green parent may have left the shared descriptor non-blocking
    try:
        serve(sock)
    finally:
        sock.close()


if __name__ == "__main__":
    raise SystemExit(main())
