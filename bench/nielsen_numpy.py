"""Baseline 2: a per-example NumPy network in the style of Nielsen's `network.py`.

This is what the original MNIST server ran: column-vector activations, backpropagation one
training example at a time, the gradients summed over the mini-batch, then
w -= eta/m * sum, b -= eta/m * sum. Weights are float64 (as `np.random.randn` gives),
inputs float32 columns (as Nielsen's loader gives); the same starting weights and the same
per-epoch shuffle as the other sides. Written here from the description, not copied.

Run alone: `python -m bench.nielsen_numpy`; prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def sigmoid(z: np.ndarray) -> np.ndarray:
    """The logistic function."""
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_prime(z: np.ndarray) -> np.ndarray:
    """Derivative of the logistic function."""
    return sigmoid(z) * (1 - sigmoid(z))


class Network:
    """Sigmoid layers, quadratic cost, stochastic gradient descent, one example at a time."""

    def __init__(self, params: list[tuple[np.ndarray, np.ndarray]]) -> None:
        self.weights = [w.astype(np.float64) for w, _ in params]
        self.biases = [b.astype(np.float64).reshape(-1, 1) for _, b in params]

    def feedforward(self, a: np.ndarray) -> np.ndarray:
        """Output column for one input column."""
        for b, w in zip(self.biases, self.weights):
            a = sigmoid(np.dot(w, a) + b)
        return a

    def update_mini_batch(self, mini_batch: list[tuple[np.ndarray, np.ndarray]], eta: float) -> None:
        """One SGD step: the sum of per-example gradients, scaled by eta / m."""
        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        for x, y in mini_batch:
            delta_nabla_b, delta_nabla_w = self.backprop(x, y)
            nabla_b = [nb + dnb for nb, dnb in zip(nabla_b, delta_nabla_b)]
            nabla_w = [nw + dnw for nw, dnw in zip(nabla_w, delta_nabla_w)]
        step = eta / len(mini_batch)
        self.weights = [w - step * nw for w, nw in zip(self.weights, nabla_w)]
        self.biases = [b - step * nb for b, nb in zip(self.biases, nabla_b)]

    def backprop(self, x: np.ndarray, y: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Gradient of the quadratic cost of one example, layer by layer."""
        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        activation = x
        activations = [x]
        zs = []
        for b, w in zip(self.biases, self.weights):
            z = np.dot(w, activation) + b
            zs.append(z)
            activation = sigmoid(z)
            activations.append(activation)
        delta = (activations[-1] - y) * sigmoid_prime(zs[-1])
        nabla_b[-1] = delta
        nabla_w[-1] = np.dot(delta, activations[-2].transpose())
        for layer in range(2, len(self.weights) + 1):
            delta = np.dot(self.weights[-layer + 1].transpose(), delta) * sigmoid_prime(zs[-layer])
            nabla_b[-layer] = delta
            nabla_w[-layer] = np.dot(delta, activations[-layer - 1].transpose())
        return nabla_b, nabla_w

    def evaluate(self, test_data: list[tuple[np.ndarray, int]]) -> int:
        """How many test inputs the network classifies correctly."""
        return sum(int(np.argmax(self.feedforward(x)) == y) for x, y in test_data)


def train(epochs: int, batch: int, eta: float) -> dict:
    """Train and time every epoch (evaluation excluded from the epoch time)."""
    from bench.common import epoch_order, initial_parameters, load_mnist

    X_train, y_train, X_test, y_test = load_mnist()
    eye = np.eye(10)
    training_data = [(x.reshape(784, 1), eye[label].reshape(10, 1)) for x, label in zip(X_train, y_train)]
    test_data = [(x.reshape(784, 1), int(label)) for x, label in zip(X_test, y_test)]
    net = Network(initial_parameters())
    n = len(training_data)
    epoch_times, accuracies = [], []
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        shuffled = [training_data[i] for i in epoch_order(epoch, n)]
        for k in range(0, n, batch):
            net.update_mini_batch(shuffled[k:k + batch], eta)
        epoch_times.append(time.perf_counter() - started)
        accuracies.append(net.evaluate(test_data) / len(test_data))
    return {"engine": "per-example NumPy (network.py style)", "epoch_times": epoch_times,
            "accuracies": accuracies, "numpy_version": np.__version__}


def main(argv: list[str] | None = None) -> int:
    """Print one JSON line with per-epoch times and held-out accuracies."""
    from bench.common import EPOCHS, ETA, MINI_BATCH

    parser = argparse.ArgumentParser(prog="python -m bench.nielsen_numpy")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--batch", type=int, default=MINI_BATCH)
    parser.add_argument("--eta", type=float, default=ETA)
    args = parser.parse_args(argv)
    print(json.dumps(train(args.epochs, args.batch, args.eta)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
