"""Right and wrong predictions on held-out data, with images and the network's outputs."""

from __future__ import annotations

from typing import Any

from torch import nn

from livetrain.data.images import png_base64
from livetrain.data.sources import DatasetArrays

EXAMPLES_PER_KIND = 12


def collect_examples(engine, model: nn.Sequential, data: DatasetArrays,
                     limit: int = EXAMPLES_PER_KIND) -> dict[str, Any]:
    """Up to `limit` right and `limit` wrong held-out predictions, in test-set order."""
    if data.info.task != "classification":
        return {"right": [], "wrong": [], "total": len(data.y_test)}
    outputs = engine.outputs(data.X_test)
    predicted = outputs.argmax(axis=1)
    last_linear = [m for m in model if isinstance(m, nn.Linear)][-1].weight.detach().numpy()
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
            "output_weights": [float(v) for v in last_linear[predicted[index]]],
        })
    return result
