import numpy as np

from model.datasets import open_dataset, write_shd
from model.events import make_events
from model.samples import export_samples, read_index


def test_recordings_without_events_are_not_exported(tmp_path):
    """Nothing to play, and the network has no bin to decide on."""
    empty = make_events("cochlea", t=np.array([], np.int64), channel=np.array([], np.uint16))
    word = make_events("cochlea", t=np.array([0, 5_000]), channel=np.array([1, 2]))
    write_shd(tmp_path / "test.h5", [empty, word, empty, word], [0, 0, 1, 1], keys=["a", "b"],
              channels=8)
    predicted = []

    def predict(events: np.ndarray) -> int:
        predicted.append(len(events))
        return 1

    with open_dataset(tmp_path / "test.h5") as ds:
        index = export_samples(ds, tmp_path / "samples", 2, predict)
    assert [(s.source, s.label, s.predicted) for s in index] == [
        ("test.h5[1]", 0, 1), ("test.h5[3]", 1, 1)]
    assert predicted == [2, 2]
    assert read_index(tmp_path / "samples") == index
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == [
        "a-0.npy", "b-0.npy", "index.json"]
