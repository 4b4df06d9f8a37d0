"""Baseline for benchmark 14: the plain PyTorch loop a user writes for a layer-spec network, no livetrain.

Two networks on the first 8,000 MNIST test-set images, Adam (lr 0.001), mini-batch 64,
cross-entropy, the same layers and the same initial weights as the server builds them (torch
seeded 0, modules created in order):

- `mlp`: Linear(784, 256), ReLU, Linear(256, 10);
- `cnn`: Conv2d(1, 8, 3), ReLU, MaxPool2d(2), Conv2d(8, 16, 3), ReLU, MaxPool2d(2), Flatten,
  Linear(400, 10).

`--variant textbook` (the comparison's baseline) is the loop of the tutorials: a fresh
`randperm` each epoch, each mini-batch indexed out of the tensors, `zero_grad()`, forward,
`backward()`, `step()` of `torch.optim.Adam` as constructed by default, the running loss read
with `loss.item()`. `--variant tuned` applies what livetrain's engine does on top: the fused Adam,
the loss summed as a tensor, and for the CNN channels-last tensors. Epoch time is the training
loop only (shuffle included, evaluation excluded), as the server's `elapsed_time`.

Run alone: `python -m bench.torch_layer_loop --model cnn --threads 2`; prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time

MODELS = ("mlp", "cnn")


def build(model: str):
    """The network and its per-example input shape."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    if model == "mlp":
        return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10)), (784,)
    return nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 10)), (1, 28, 28)


def train(model_name: str, threads: int, epochs: int, batch: int, variant: str) -> dict:
    """Train and time every epoch; held-out accuracy after each."""
    import torch

    from bench.common import load_mnist

    torch.set_num_threads(threads)
    X_train, y_train, X_test, y_test = load_mnist()
    model, shape = build(model_name)
    X, y = torch.from_numpy(X_train).reshape(-1, *shape), torch.from_numpy(y_train)
    X_held, y_held = torch.from_numpy(X_test).reshape(-1, *shape), torch.from_numpy(y_test)
    tuned = variant == "tuned"
    if tuned and model_name == "cnn":
        model = model.to(memory_format=torch.channels_last)
        X = X.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, **({"fused": True} if tuned else {}))
    loss_fn = torch.nn.CrossEntropyLoss()
    epoch_times, accuracies, losses = [], [], []
    for _ in range(epochs):
        model.train()
        started = time.perf_counter()
        order = torch.randperm(len(X))
        if tuned:
            running = torch.zeros(())
            for lo in range(0, len(X), batch):
                rows = order[lo:lo + batch]
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(model(X.index_select(0, rows)), y.index_select(0, rows))
                loss.backward()
                optimizer.step()
                running.add_(loss.detach(), alpha=len(rows))
            train_loss = float(running) / len(X)
        else:
            running_loss = 0.0
            for lo in range(0, len(X), batch):
                idx = order[lo:lo + batch]
                inputs, targets = X[idx], y[idx]
                optimizer.zero_grad()
                loss = loss_fn(model(inputs), targets)
                loss.backward()
                optimizer.step()
                running_loss += loss.item() * len(idx)
            train_loss = running_loss / len(X)
        epoch_times.append(time.perf_counter() - started)
        losses.append(train_loss)
        model.eval()
        with torch.no_grad():
            accuracies.append(float((model(X_held).argmax(1) == y_held).float().mean()))
    return {"model": model_name, "threads": threads, "variant": variant, "epoch_times": epoch_times,
            "accuracies": accuracies, "train_losses": losses, "torch_version": torch.__version__}


def main(argv: list[str] | None = None) -> int:
    """Print one JSON line per model asked for, with per-epoch times."""
    parser = argparse.ArgumentParser(prog="python -m bench.torch_layer_loop")
    parser.add_argument("--model", choices=[*MODELS, "both"], default="both")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--variant", choices=["textbook", "tuned"], default="textbook")
    args = parser.parse_args(argv)
    models = MODELS if args.model == "both" else (args.model,)
    out = {name: train(name, args.threads, args.epochs, args.batch, args.variant) for name in models}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
