"""Right and wrong predictions on held-out data, with images and the network's outputs."""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import nn

from livetrain.data.images import png_base64
from livetrain.data.sources import DatasetArrays

EXAMPLES_PER_KIND = 12


def collect_examples(engine, model: nn.Sequential, data: DatasetArrays,
                     limit: int = EXAMPLES_PER_KIND) -> dict[str, Any]:
    """Up to `limit` right and `limit` wrong held-out predictions, in test-set order.

    Only classification has right and wrong answers: for regression (one target or several)
    both lists are empty. Rows that are not images come without `image_data`.
    """
    if data.info.task != "classification":
        return {"right": [], "wrong": [], "total": len(data.y_test)}
    outputs = engine.outputs(data.X_test)
    predicted = outputs.argmax(axis=1)
    last_linear = _output_weights(model, outputs.shape[1])
    result: dict[str, Any] = {"right": [], "wrong": [], "total": len(data.y_test),
                              "correct": int((predicted == data.y_test).sum())}
    for index in range(len(data.y_test)):
        kind = "right" if predicted[index] == data.y_test[index] else "wrong"
        if len(result[kind]) >= limit:
            if all(len(result[k]) >= limit for k in ("right", "wrong")):
                break
            continue
        image = None
        if data.is_image:
            _, height, width = data.info.input_shape
            image = png_base64(data.X_test[index].reshape(height, width))
        result[kind].append({
            "example_index": int(index),
            "predicted_digit": int(predicted[index]),
            "actual_digit": int(data.y_test[index]),
            "image_data": image,
            "network_output": [float(v) for v in outputs[index]],
            "output_weights": (None if last_linear is None
                               else [float(v) for v in last_linear[predicted[index]]]),
        })
    return result


def _output_weights(model: nn.Sequential, n_outputs: int) -> np.ndarray | None:
    """The weights into each output neuron, when the last Linear layer gives the outputs.

    A network may end otherwise (a Conv2d and a Flatten, say): it then has none to show.
    """
    linears = [m for m in model if isinstance(m, nn.Linear)]
    if not linears or linears[-1].out_features != n_outputs:
        return None
    return linears[-1].weight.detach().cpu().numpy()  # the model may live on a GPU
