"""Baseline 1: the best plain-PyTorch loop for the workload, no livetrain involved.

[784,30,10] sigmoid network, quadratic cost C = 1/(2m) * sum ||a - y||^2 per mini-batch
of m, plain SGD with eta 3.0 (so each step is w -= eta/m * sum of per-example gradients,
Nielsen's update), mini-batch 10, the first 8,000 MNIST test-set images.

What makes it fast, as far as plain torch goes on a CPU at mini-batch 10 (where per-step
overhead, not arithmetic, dominates):
- the epoch's shuffle is applied once (one gather), then `split` gives the mini-batches as
  views of the shuffled tensor;
- one-hot targets are built once;
- functional forward (`F.linear` + `torch.sigmoid`), no `nn.Module` call machinery;
- the update: `--update foreach` (default, the fastest) takes the gradients with
  `torch.autograd.grad` and applies plain SGD with one `torch._foreach_add_` (exactly what
  `SGD(foreach=True)` does without momentum, minus the optimizer's per-step Python
  bookkeeping: about 30% faster here); `--update optim` is the textbook
  `zero_grad(set_to_none=True)` / `backward()` / `torch.optim.SGD(foreach=True).step()`;
- the loss is accumulated as a tensor (`detach()`), read once per epoch, not per step;
- `torch.set_num_threads` from the command line (the runner tries 1 and 2).

Run alone: `python -m bench.torch_loop --threads 1`; prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def train(threads: int, epochs: int, batch: int, eta: float, update: str = "foreach") -> dict:
    """Train and time every epoch (evaluation excluded from the epoch time)."""
    import torch
    import torch.nn.functional as F

    from bench.common import epoch_order, initial_parameters, load_mnist

    torch.set_num_threads(threads)
    X_train, y_train, X_test, y_test = load_mnist()
    X = torch.from_numpy(X_train)
    Y = torch.nn.functional.one_hot(torch.from_numpy(y_train), 10).float()
    X_held, y_held = torch.from_numpy(X_test), torch.from_numpy(y_test)
    params = []
    for weight, bias in initial_parameters():
        params += [torch.tensor(weight, requires_grad=True), torch.tensor(bias, requires_grad=True)]
    w1, b1, w2, b2 = params
    optimizer = torch.optim.SGD(params, lr=eta, foreach=True) if update == "optim" else None
    n = len(X)
    epoch_times, accuracies, train_losses = [], [], []
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        order = torch.from_numpy(epoch_order(epoch, n))
        Xs, Ys = X[order], Y[order]
        loss_sum = torch.zeros(())
        for xb, yb in zip(Xs.split(batch), Ys.split(batch)):
            out = torch.sigmoid(F.linear(torch.sigmoid(F.linear(xb, w1, b1)), w2, b2))
            # quadratic cost of the mini-batch: 1/(2m) * sum ||a - y||^2
            loss = F.mse_loss(out, yb, reduction="sum") * (0.5 / len(xb))
            if optimizer is None:
                grads = torch.autograd.grad(loss, params)
                with torch.no_grad():
                    torch._foreach_add_(params, grads, alpha=-eta)
            else:
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            loss_sum += loss.detach() * len(xb)
        train_loss = float(loss_sum) / n
        epoch_times.append(time.perf_counter() - started)
        train_losses.append(train_loss)
        with torch.no_grad():
            out = torch.sigmoid(F.linear(torch.sigmoid(F.linear(X_held, w1, b1)), w2, b2))
            accuracies.append(float((out.argmax(1) == y_held).float().mean()))
    update_name = "autograd.grad + _foreach_add_" if optimizer is None else "backward + SGD(foreach=True)"
    return {"engine": f"torch, {update_name}, {threads} thread(s)", "threads": threads, "update": update,
            "epoch_times": epoch_times, "accuracies": accuracies, "train_losses": train_losses,
            "torch_version": torch.__version__, "numpy_version": np.__version__}


def main(argv: list[str] | None = None) -> int:
    """Print one JSON line with per-epoch times and held-out accuracies."""
    from bench.common import EPOCHS, ETA, MINI_BATCH

    parser = argparse.ArgumentParser(prog="python -m bench.torch_loop")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--batch", type=int, default=MINI_BATCH)
    parser.add_argument("--eta", type=float, default=ETA)
    parser.add_argument("--update", choices=["foreach", "optim"], default="foreach")
    args = parser.parse_args(argv)
    print(json.dumps(train(args.threads, args.epochs, args.batch, args.eta, args.update)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
