"""ArtifactStore: atomic writes, SHA-256 checked on every read, no path leaves the root."""

from __future__ import annotations

import hashlib
import io
import os

import pytest

from livetrain.errors import IntegrityError, ValidationError
from livetrain.store import ArtifactStore
from livetrain.store.artifacts import sha256_file


@pytest.fixture
def store(tmp_path):
    return ArtifactStore(tmp_path / "models")


def leftovers(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_write_bytes_stores_the_file_and_its_checksum(store):
    data = b"weights" * 1000
    ref = store.write_bytes("networks/n1/weights.pt", data)
    assert ref.path == "networks/n1/weights.pt"
    assert ref.sha256 == hashlib.sha256(data).hexdigest()
    assert ref.size == len(data)
    path = store.root / "networks/n1/weights.pt"
    assert path.read_bytes() == data
    assert sha256_file(path) == ref.sha256
    assert store.open_verified(ref.path, ref.sha256).getvalue() == data
    assert leftovers(store.root) == ["networks/n1/weights.pt"]


def test_overwrite_replaces_the_whole_file(store):
    store.write_bytes("a.bin", b"x" * 100)
    ref = store.write_bytes("a.bin", b"short")
    assert (store.root / "a.bin").read_bytes() == b"short"
    assert ref.size == 5


def test_torch_save_through_the_hashing_writer(store):
    torch = pytest.importorskip("torch")
    state = {"model": {"w": torch.arange(6.0).reshape(2, 3)}, "epoch": 3}
    ref = store.write("ckpt.pt", lambda fh: torch.save(state, fh))
    assert ref.sha256 == sha256_file(store.root / "ckpt.pt")
    loaded = torch.load(store.open_verified("ckpt.pt", ref.sha256), map_location="cpu", weights_only=True)
    assert loaded["epoch"] == 3
    assert torch.equal(loaded["model"]["w"], state["model"]["w"])


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(store):
    store.write_bytes("model.pt", b"good")

    def half_then_crash(fh):
        fh.write(b"half of the new")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        store.write("model.pt", half_then_crash)
    assert (store.root / "model.pt").read_bytes() == b"good"
    assert leftovers(store.root) == ["model.pt"]


def test_a_changed_file_is_refused(store):
    ref = store.write_bytes("w.pt", b"original")
    (store.root / "w.pt").write_bytes(b"tampered")
    with pytest.raises(IntegrityError, match="SHA-256"):
        store.open_verified("w.pt", ref.sha256)


def test_a_missing_file_is_an_integrity_error(store):
    with pytest.raises(IntegrityError, match="missing"):
        store.open_verified("gone.pt", "0" * 64)


@pytest.mark.parametrize("relpath", [
    "",
    "/etc/passwd",
    "\\windows\\system32",
    "../outside.txt",
    "networks/../../outside.txt",
    "a\x00b",
])
def test_paths_outside_the_root_are_refused(store, tmp_path, relpath):
    with pytest.raises(ValidationError):
        store.write_bytes(relpath, b"x")
    assert not (tmp_path / "outside.txt").exists()
    assert not store.root.exists() or leftovers(store.root) == []


def test_a_symlink_out_of_the_root_is_refused(store, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    store.root.mkdir(parents=True)
    os.symlink(outside, store.root / "link")
    with pytest.raises(ValidationError, match="leaves"):
        store.write_bytes("link/evil.pt", b"x")
    assert list(outside.iterdir()) == []


def test_delete_removes_files_and_folders(store):
    store.write_bytes("networks/n1/runs/r1/checkpoint-00001.pt", b"1")
    store.write_bytes("networks/n1/weights.pt", b"2")
    store.write_bytes("networks/n2/weights.pt", b"3")
    assert store.exists("networks/n1/weights.pt")
    assert store.delete("networks/n1/weights.pt") is True
    assert not store.exists("networks/n1/weights.pt")
    assert store.delete("networks/n1") is True
    assert store.delete("networks/n1") is False
    assert leftovers(store.root) == ["networks/n2/weights.pt"]


def test_hashing_writer_accepts_any_buffer(store):
    import array

    data = array.array("i", [1, 2, 3])
    ref = store.write("arr.bin", lambda fh: fh.write(data))
    assert ref.size == len(data.tobytes())
    assert ref.sha256 == hashlib.sha256(data.tobytes()).hexdigest()
    assert store.open_verified("arr.bin", ref.sha256).read() == io.BytesIO(data.tobytes()).read()
