"""Join the ten speakers' encoded takes (train.h5, more-a.h5, more-b.h5) into train-all.h5."""

from model.datasets import open_dataset, write_shd
from model.speech_synth import KEYS

events, labels = [], []
for part in ("train", "more-a", "more-b"):
    with open_dataset(f"data/shdlike/{part}.h5") as d:
        for i in range(len(d)):
            e, label = d[i]
            events.append(e)
            labels.append(label)
write_shd("data/shdlike/train-all.h5", events, labels, keys=KEYS)
