"""The job protocol: every job and report survives the wire as the same typed object, and what a
worker cannot read is refused rather than guessed at."""

from __future__ import annotations

import socket

import pytest

from livetrain.jobs.protocol import (
    Cancelled,
    Completed,
    Epoch,
    NetworkJob,
    Progress,
    SklearnJob,
    Started,
    decode,
    recv_message,
    send_message,
)

JOB = dict(run_id="r1", dataset_id="iris", dataset={"id": "iris"}, mnist_dir="/m", models_dir="/models",
           artifact_dir="runs/r1", torch_threads=2)


@pytest.mark.parametrize("message", [
    NetworkJob(**JOB, network_id="n1", spec={"kind": "layer_sizes"}, hyperparams={"epochs": 2}, init=None,
               device="cuda:0"),
    SklearnJob(**JOB, algorithm="random_forest", params={"n_estimators": 10}, seed=3, steps=5),
    Started(pid=12, start_epoch=0, total_epochs=3, n_train=100, n_val=0, n_test=30, device="cpu"),
    Progress(epoch=1, batch=5, batches=10, train_loss=None),
    Epoch(epoch=1, total_epochs=3, train_loss=0.5, val_loss=0.4, accuracy=0.9, correct=27, total=30,
          elapsed_time=0.1, eval_time=0.01, checkpoint={"path": "p", "sha256": "s", "epoch": 1}, extra={"r2": 1.0}),
    Completed(final={"test": {"accuracy": 0.9}}, epochs_done=3, weights={"path": "w", "sha256": "s"}),
    Cancelled(None),
])
def test_each_message_crosses_a_socket_unchanged(message):
    ours, theirs = socket.socketpair()
    with ours, theirs:
        send_message(ours, message.to_wire())
        assert decode(recv_message(theirs)) == message


def test_a_job_keeps_its_kind_on_the_wire():
    wire = SklearnJob(**JOB, algorithm="svm").to_wire()
    assert wire["type"] == "sklearn_run"
    assert isinstance(decode(wire), SklearnJob)


def test_an_unknown_message_is_refused():
    with pytest.raises(ValueError, match="unknown message type 'train_now'"):
        decode({"type": "train_now"})
