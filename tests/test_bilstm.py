"""The BiLSTM: words as Spark splits them, padding that changes nothing, and training it on Spark through
both backends, registered and scored through ``predict``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
from pyspark.ml.feature import RegexTokenizer
from pyspark.sql import SparkSession

from reviewlake import registry
from reviewlake.config import Config
from reviewlake.families.bilstm import UNK, WORD_GAPS, BiLSTMClassifier, encode_words, words
from reviewlake.families import train
from reviewlake.training.stage import TrainRequest
from tests.conftest import train_config

BILSTM = ["train.bilstm.batch_size=32", "train.bilstm.epochs=3", "train.bilstm.max_length=64",
          "train.bilstm.vocab_size=2000"]


def test_words_are_the_ones_spark_counts(spark: SparkSession) -> None:
    texts = ["It's GREAT, 10/10 -- wouldn't buy again?!", "", "naïve café ... ok"]
    frame = spark.createDataFrame([(t,) for t in texts], "text_clean string")
    got = RegexTokenizer(inputCol="text_clean", outputCol="w", pattern=WORD_GAPS, toLowercase=True,
                         minTokenLength=1).transform(frame).collect()
    assert [r["w"] for r in got] == [words(t) for t in texts]
    assert words(texts[0]) == ["it's", "great", "10", "10", "wouldn't", "buy", "again"]
    assert encode_words(["great", "zzz"], {"great": 2}, 5) == [2, UNK] and encode_words([], {}, 5) == [UNK]


def test_padding_does_not_change_a_reviews_logits() -> None:
    torch.manual_seed(0)
    model = BiLSTMClassifier(vocab_size=50, embedding=8, hidden=[6, 4, 3], num_classes=2).eval()
    short = torch.tensor([[5, 6, 7]])
    padded = torch.tensor([[5, 6, 7, 0, 0, 0], [9, 8, 7, 6, 5, 4]])
    alone = model(short, torch.tensor([3]))
    together = model(padded, torch.tensor([3, 6]))
    assert torch.allclose(alone[0], together[0], atol=1e-6)


@pytest.mark.parametrize("backend", ["torch-distributor", "horovod"])
def test_bilstm_trains_through_each_backend_and_predicts(spark: SparkSession, spark_home: Path, train_home: Path,
                                                         train_silver: Config, backend: str) -> None:
    cfg = train_config(spark_home, train_home, *BILSTM)
    name = f"t-bilstm-{backend}"
    report = train(spark, cfg, TrainRequest(model="bilstm", backend=backend, num_proc=2, local_mode=False,
                                            use_gpu=False, name=name))
    assert report.version == "1" and report.steps > 0
    accuracy = {s: v for s, m, v in report.test_metrics if m == "accuracy"}
    assert accuracy["amazon-tsv"] > 0.75, report.summary()
    model = registry.load(cfg, f"{name}@champion")
    out = model.predict(pd.DataFrame({"text": ["terrible, it broke after two days, waste of money", ""]}))
    assert list(out["status"]) == ["ok", "empty_text"] and list(out["sentiment"]) == ["negative", None]
    vocabulary = model.unwrap_python_model().predictor.index
    assert 100 < len(vocabulary) <= 1998 and min(vocabulary.values()) == 2
