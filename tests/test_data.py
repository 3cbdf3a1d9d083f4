"""load_text_dataset: local files of every supported format, saved folders, Hub ids offline; text_column."""

from __future__ import annotations

import json

import datasets
import pytest

from hf_seqinterp.data import load_text_dataset, text_column
from hf_seqinterp.errors import InvalidInputError, SeqInterpError

# Texts that naive CSV/NA parsing would damage: a quote, "null"/"NA"/"None", trailing space, a comma.
TEXTS = ['he said "wow', "null", "NA", "None", "trailing space ", "a, b", "ünïcode"]
LABELS = [1, 0, 1, 0, 1, 0, 1]


def test_tsv_keeps_every_text_verbatim(tmp_path):
    path = tmp_path / "data.tsv"
    path.write_text("sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in zip(TEXTS, LABELS)), encoding="utf-8")
    ds = load_text_dataset(path)
    assert ds["sentence"] == TEXTS and ds["label"] == LABELS


@pytest.mark.parametrize("suffix", [".csv", ".json", ".jsonl", ".parquet"])
def test_other_file_formats(tmp_path, suffix):
    path = tmp_path / f"data{suffix}"
    table = datasets.Dataset.from_dict({"text": TEXTS, "label": LABELS})
    if suffix == ".csv":
        table.to_csv(str(path), index=False)
    elif suffix == ".parquet":
        table.to_parquet(str(path))
    elif suffix == ".jsonl":
        path.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in zip(TEXTS, LABELS)), encoding="utf-8")
    else:
        path.write_text(json.dumps([{"text": t, "label": y} for t, y in zip(TEXTS, LABELS)]), encoding="utf-8")
    ds = load_text_dataset(path)
    assert ds["text"] == TEXTS and ds["label"] == LABELS


def test_saved_folders_and_splits(tmp_path):
    single = datasets.Dataset.from_dict({"text": TEXTS})
    single.save_to_disk(str(tmp_path / "one"))
    assert load_text_dataset(tmp_path / "one")["text"] == TEXTS
    both = datasets.DatasetDict({"train": single, "test": datasets.Dataset.from_dict({"text": ["x"]})})
    both.save_to_disk(str(tmp_path / "two"))
    assert load_text_dataset(tmp_path / "two", split="test")["text"] == ["x"]
    with pytest.raises(InvalidInputError, match=r"has splits \['train', 'test'\]; choose one with split="):
        load_text_dataset(tmp_path / "two")
    with pytest.raises(InvalidInputError, match=r"has no split 'dev'; its splits are \['train', 'test'\]"):
        load_text_dataset(tmp_path / "two", split="dev")


def test_clear_errors(tmp_path, monkeypatch):
    (tmp_path / "notes.txt").write_text("x", encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"has suffix '\.txt'; supported data files: \.csv, \.tsv"):
        load_text_dataset(tmp_path / "notes.txt")
    with pytest.raises(InvalidInputError, match="not one written by Dataset.save_to_disk"):
        load_text_dataset(tmp_path)
    with pytest.raises(FileNotFoundError, match="No such data file or folder: ./missing.tsv"):
        load_text_dataset("./missing.tsv")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    with pytest.raises(SeqInterpError, match=r"'stanfordnlp/sst2' is not a local file or folder, and the Hub is offline"):
        load_text_dataset("stanfordnlp/sst2")


def test_text_column_choice():
    ds = datasets.Dataset.from_dict({"idx": [0], "sentence": ["a"], "text": ["b"]})
    assert text_column(ds) == "text" and text_column(ds, "sentence") == "sentence"
    with pytest.raises(InvalidInputError, match=r"Say which column holds the texts .* columns are \['idx', 'review_body'\]"):
        text_column(datasets.Dataset.from_dict({"idx": [0], "review_body": ["a"]}))
