"""A big file uploaded to a real eventlet server: it streams to disk, is prepared in a worker process,
and the server keeps answering while it is."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import requests

ROWS = 40_000
WORKER_BYTES = 1_000_000  # this server prepares uploads of 1 MB or more in a worker (16 MiB by default)


def big_csv(path, rows: int = ROWS) -> None:
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({f"x{i}": np.round(rng.normal(size=rows) * 100, 3) for i in range(8)})
    frame["region"] = rng.choice(["north", "south", "east", "west"], rows)
    # written as a European spreadsheet does: 89.961,37
    frame["revenue"] = [f"{v:,.2f}".replace(",", " ").replace(".", ",").replace(" ", ".")
                        for v in rng.uniform(100, 90_000, rows)]
    frame["label"] = np.where(frame["x0"] + frame["x1"] > 0, "up", "down")
    frame.to_csv(path, index=False, sep=";", decimal=",")


def test_a_big_upload_streams_is_prepared_in_a_worker_and_the_server_keeps_answering(start_server, tmp_path):
    server = start_server(env={"LIVETRAIN_PREPARE_IN_WORKER_BYTES": str(WORKER_BYTES), "LIVETRAIN_WARM_WORKERS": "0"})
    path = tmp_path / "big.csv"
    big_csv(path)
    assert path.stat().st_size > WORKER_BYTES  # prepared in a worker process

    answered: list[int] = []
    done = threading.Event()

    def ask_status() -> None:
        while not done.wait(0.05):
            answered.append(requests.get(f"{server.url}/api/status", timeout=30).status_code)

    asker = threading.Thread(target=ask_status)
    asker.start()
    try:
        with open(path, "rb") as fh:
            response = requests.post(f"{server.url}/api/datasets", files={"file": ("big.csv", fh)},
                                     data={"target": "label", "upload_id": "big-1"}, timeout=600)
    finally:
        done.set()
        asker.join()
    detail = response.json()
    assert response.status_code == 201, detail
    assert detail["n_rows"] == ROWS
    assert detail["schema"]["dialect"]["delimiter"] == ";" and detail["schema"]["dialect"]["decimal"] == ","
    revenue = next(c for c in detail["schema"]["columns"] if c["name"] == "revenue")
    assert revenue["type"] == "numeric" and revenue["number_format"]["thousands"] == "."
    # the server answered status requests all along (many while the file was read and prepared)
    assert answered and set(answered) == {200} and len(answered) >= 3
    assert not list((server.home / "models" / ".spool").glob("*"))

    # the stored file comes back byte for byte (training on a worker-prepared dataset: test_dataset_files)
    sent_back = requests.get(f"{server.url}/api/datasets/{detail['id']}/file", timeout=60)
    assert sent_back.content == path.read_bytes()
