"""Output folders of `explain_dataset`: one live run per folder (`--overwrite` included), temporary
files that belong to their run, checksummed shards (flipped bytes, truncated and empty shards are
named, set aside and recomputed, never merged), folders of the previous version still resume."""

from __future__ import annotations

import json
import logging
import os

import datasets
import pytest
from test_explain_dataset import assert_same_explanations
from tiny_models import random_texts, tiny_model

import hf_seqinterp as hsi
from hf_seqinterp.cli import main
from hf_seqinterp.errors import OutputFolderBusyError, SeqInterpError
from hf_seqinterp.shards import CHECKSUM_SUFFIX, LOCK, REJECTED, CorruptShardError, OutputLock, ShardStore

TEXTS = random_texts(12, seed=31)
METHODS = {"gradient_x_input": {}, "integrated_gradients": {"n_steps": 4}}
SHARDS = 4  # 12 rows in shards of 3


@pytest.fixture(scope="module")
def adapter():
    return hsi.ModelAdapter(*tiny_model("bert"))


@pytest.fixture(scope="module")
def source():
    return datasets.Dataset.from_dict({"text": TEXTS, "label": [i % 3 for i in range(len(TEXTS))]})


def run(adapter, source, out, methods=METHODS, **kwargs):
    return hsi.explain_dataset(adapter, source, methods, output_dir=out, shard_size=3, label_column="label",
                               progress=False, **kwargs)


@pytest.fixture(scope="module")
def reference(adapter, source, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    run(adapter, source, out)
    return hsi.load_explanations(out)


def snapshot(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and p.name != LOCK}


def assert_complete(out, reference):
    expls = hsi.load_explanations(out)
    keys = [(e.text, e.method) for e in expls]
    assert len(keys) == len(set(keys)) == 2 * len(TEXTS)  # nothing lost, nothing twice
    assert_same_explanations(expls, reference, atol=1e-6)


def test_a_live_run_owns_its_folder_even_against_overwrite(adapter, source, reference, tmp_path):
    run(adapter, source, tmp_path)
    before = snapshot(tmp_path)
    with OutputLock(tmp_path) as live:  # another run is working in the folder
        (tmp_path / f".tmp-{live.run_id}-shard-000009-of-000010.parquet").write_bytes(b"being written")
        for overwrite in (False, True):
            with pytest.raises(OutputFolderBusyError, match=rf"in use by run {live.run_id} \(pid {os.getpid()} on host"):
                run(adapter, source, tmp_path, methods={"integrated_gradients": {"n_steps": 2}}, overwrite=overwrite)
        assert (tmp_path / f".tmp-{live.run_id}-shard-000009-of-000010.parquet").exists()  # its temp file survives
    assert snapshot(tmp_path) == {**before, f".tmp-{live.run_id}-shard-000009-of-000010.parquet": b"being written"}
    # once that run is gone (lock released, as the kernel does for a killed process), the next run
    # takes the folder over and deletes the dead run's temporary file
    run(adapter, source, tmp_path)
    assert not list(tmp_path.glob(".tmp-*"))
    assert_complete(tmp_path, reference)


def test_the_cli_names_the_owner_and_exits_2(adapter, tmp_path, capsys):
    data = tmp_path / "data.tsv"
    data.write_text("text\n" + "".join(f"{t}\n" for t in TEXTS[:3]), encoding="utf-8")
    out = tmp_path / "out"
    with OutputLock(out):
        assert main(["explain-dataset", str(data), "--output-dir", str(out), "--overwrite", "--no-progress",
                     "--method", "saliency"]) == 2
    err = capsys.readouterr().err
    assert f"{out} is in use by run" in err and "wait for it to finish" in err


def test_a_stale_lock_is_taken_over(adapter, source, reference, tmp_path, caplog):
    tmp_path.joinpath(LOCK).write_text(json.dumps({"pid": 999_999_999, "host": "elsewhere", "run_id": "dead-run"}))
    with caplog.at_level(logging.WARNING, logger="hf_seqinterp.shards"):
        run(adapter, source, tmp_path)
    assert "took over the lock of run dead-run (pid 999999999 on elsewhere)" in caplog.text
    assert tmp_path.joinpath(LOCK).read_text() == ""  # released cleanly: no owner named any more
    assert_complete(tmp_path, reference)


def damage_flip(path):
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(b ^ 0xFF for b in data[middle : middle + 64])
    path.write_bytes(bytes(data))


def damage_truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def damage_empty(path):
    path.write_bytes(b"")


@pytest.mark.parametrize("damage", [damage_flip, damage_truncate, damage_empty])
def test_a_damaged_shard_is_named_set_aside_and_recomputed(adapter, source, reference, tmp_path, damage, caplog):
    run(adapter, source, tmp_path)
    store = ShardStore(tmp_path)
    victim = store.shards()[(1, SHARDS)]
    intact = {k: p.stat().st_mtime_ns for k, p in store.shards().items() if p != victim}
    damage(victim)
    damaged = victim.read_bytes()
    with pytest.raises(CorruptShardError, match=rf"{victim}: (its sha256 .* does not match|it is empty)") as err:
        hsi.load_explanations(tmp_path)  # never merged
    assert "Rerun explain_dataset" in str(err.value) and isinstance(err.value, SeqInterpError)

    with caplog.at_level(logging.WARNING, logger="hf_seqinterp.shards"):
        run(adapter, source, tmp_path)  # the rerun sets it aside and recomputes it alone
    assert f"{victim}: " in caplog.text and "moved to" in caplog.text
    rejected = list((tmp_path / REJECTED).glob(f"{victim.name}.*"))
    assert [p.read_bytes() for p in rejected if not p.name.endswith(CHECKSUM_SUFFIX + p.suffix)][:1] == [damaged]
    assert {k: p.stat().st_mtime_ns for k, p in store.shards().items() if p != victim} == intact
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert sorted(manifest["shards"]) == sorted(p.name for p in store.shards().values())
    assert all(len(r["sha256"]) == 64 and r["rows"] == 6 for r in manifest["shards"].values())
    assert_complete(tmp_path, reference)


def test_folders_of_the_previous_version_resume_and_load(adapter, source, reference, tmp_path, caplog):
    """The previous version wrote no checksums: such shards are verified by reading them whole."""
    run(adapter, source, tmp_path)
    store = ShardStore(tmp_path)
    for sidecar in tmp_path.glob(f"*{CHECKSUM_SUFFIX}"):
        sidecar.unlink()
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    del manifest["shards"]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    (tmp_path / LOCK).unlink()
    mtimes = {k: p.stat().st_mtime_ns for k, p in store.shards().items()}
    damage_truncate(store.shards()[(2, SHARDS)])  # a legacy shard cut short cannot be read

    with pytest.raises(CorruptShardError, match=r"shard-000002-of-000004.parquet: it cannot be read"):
        hsi.load_explanations(tmp_path)
    with caplog.at_level(logging.INFO, logger="hf_seqinterp.shards"):
        run(adapter, source, tmp_path)
    assert "has no recorded checksum (earlier version); it was verified by loading it" in caplog.text
    assert {k: p.stat().st_mtime_ns for k, p in store.shards().items() if k != (2, SHARDS)} == {
        k: t for k, t in mtimes.items() if k != (2, SHARDS)
    }
    assert len(list((tmp_path / REJECTED).glob("shard-000002-of-000004.parquet.*"))) == 1
    assert_complete(tmp_path, reference)
