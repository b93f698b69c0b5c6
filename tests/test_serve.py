"""The prediction service as a user runs it: `./spark-submit.sh serve` in its own process on the champions
and gold tables of the pipeline test's database, called with a real HTTP client, and its page driven in
headless Chromium (Debian's, installed by scripts/bootstrap.sh) with Playwright."""

from __future__ import annotations

import io
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
import pytest
import requests

from reviewlake.config import Config
from tests.conftest import PIPELINE, REPO, TEST_SPARK_CONF, TINY


@pytest.fixture(scope="module")
def service(t_pipeline: tuple[Config, Any], spark_home: Path, train_home: Path) -> Iterator[str]:
    """The service on a free port; yields its base URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    overrides = [f"paths.warehouse={spark_home / 'warehouse'}", f"paths.metastore={spark_home / 'metastore'}",
                 f"paths.mlflow={train_home / 'mlflow'}", f"paths.logs={train_home / 'logs'}", TEST_SPARK_CONF,
                 *TINY, *PIPELINE, "serve.max_texts=5", "serve.max_chars=2000", "serve.max_upload_bytes=20000"]
    args = [a for o in overrides for a in ("--set", o)]
    log = (train_home / "serve.log").open("w")
    proc = subprocess.Popen([str(REPO / "spark-submit.sh"), *args, "serve", "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if requests.get(f"{url}/health", timeout=5).ok:
                    break
            except requests.ConnectionError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"serve did not start: {(train_home / 'serve.log').read_text()[-3000:]}")
            time.sleep(1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def test_predict_answers_the_predict_json_for_each_text(service: str, spark: Any, t_pipeline: tuple[Config, Any]
                                                        ) -> None:
    from reviewlake.predict import as_json
    from reviewlake.serve import load_models, predict_frame

    health = requests.get(f"{service}/health", timeout=10).json()
    assert health == {"status": "ok", "sentiment_model": "t-multitask@champion", "topic_model": "t-joint@champion"}
    texts = ["Broke after two days, a waste of money and support never answered.", "",
             "Great value, the strings sound bright and it arrived early."]
    answer = requests.post(f"{service}/predict", json={"texts": texts}, timeout=60)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [b["text"] for b in body] == texts and body[1] == {"text": "", "status": "empty_text"}
    # The library's answers for the same texts and models, in this process.
    cfg, _ = t_pipeline
    expected = [as_json(row) for _, row in predict_frame(spark, cfg, load_models(cfg), pd.Series(texts)).iterrows()]
    for b, e in zip((body[0], body[2]), (expected[0], expected[2])):
        assert (b["sentiment"], b["topic"]["id"], sorted(b["aspects"])) == (e["sentiment"], e["topic"]["id"],
                                                                            sorted(e["aspects"]))
        assert b["confidence"] == pytest.approx(e["confidence"], abs=2e-3)
        assert b["rating"] == pytest.approx(e["rating"], abs=0.02)
    one = requests.post(f"{service}/predict", json={"text": texts[0]}, timeout=60).json()
    assert one == body[0]


@pytest.mark.parametrize("payload, status, detail", [
    ({}, 422, 'give either "texts": [...] or "text": "..."'),
    ({"texts": []}, 422, '"texts" is empty: give at least one text'),
    ({"texts": ["a"] * 6}, 413, "6 texts; at most 5 per request"),
    ({"text": "x" * 2001}, 413, "text 0 has 2,001 characters; at most 2,000"),
])
def test_bad_requests_get_a_clear_4xx(service: str, payload: dict[str, Any], status: int, detail: str) -> None:
    answer = requests.post(f"{service}/predict", json=payload, timeout=30)
    assert answer.status_code == status
    assert detail in str(answer.json()["detail"])


def test_csv_upload_returns_the_file_scored(service: str) -> None:
    upload = "id,text,stars\n1,\"Sturdy, well made, fits perfectly\",5\n2,,3\n3,Stopped working in a week,1\n"
    answer = requests.post(f"{service}/predict/csv", files={"file": ("mine.csv", upload, "text/csv")}, timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-disposition"] == 'attachment; filename="mine.scored.csv"'
    scored = pd.read_csv(io.StringIO(answer.text), dtype=str, keep_default_na=False)
    assert list(scored.columns) == ["id", "text", "stars", "status", "sentiment", "sentiment_prob", "rating_pred",
                                    "aspects", "topic_id", "topic_prob", "topic_label"]
    assert list(scored["id"]) == ["1", "2", "3"] and list(scored["status"]) == ["ok", "empty_text", "ok"]
    assert scored["sentiment"][1] == "" and set(scored["sentiment"][[0, 2]]) <= {"negative", "positive"}
    # A text that a spreadsheet would run as a formula comes back quoted.
    formula = "id,text\n1,=HYPERLINK(\"http://x\")\n"
    answer = requests.post(f"{service}/predict/csv", files={"file": ("f.csv", formula, "text/csv")}, timeout=60)
    assert pd.read_csv(io.StringIO(answer.text), dtype=str)["text"][0] == "'=HYPERLINK(\"http://x\")"


@pytest.mark.parametrize("content, status, detail", [
    (b"id,review\n1,fine\n", 400, "bad.csv: no 'text' column (it has ['id', 'review'])"),
    ("text\ncaf\u00e9\n".encode("latin-1"), 400, "bad.csv: not UTF-8 text (byte 8 is 0xe9)"),
    (b"text\n" + b"long enough review text\n" * 1000, 413, "uploads are limited to 20,000 bytes"),
])
def test_bad_uploads_get_a_clear_4xx(service: str, content: bytes, status: int, detail: str) -> None:
    answer = requests.post(f"{service}/predict/csv", files={"file": ("bad.csv", content, "text/csv")}, timeout=30)
    assert answer.status_code == status and detail in answer.json()["detail"], answer.text


def test_gold_table_and_charts(service: str, t_pipeline: tuple[Config, Any]) -> None:
    topics = requests.get(f"{service}/api/topics", timeout=60).json()
    assert sorted(t["topic_id"] for t in topics) == [0, 1, 2, 3]
    for t in topics:
        assert t["negative"] + t["neutral"] + t["positive"] == t["reviews"] > 0
    for kind in ("sentiment", "topics"):
        chart = requests.get(f"{service}/charts/{kind}.png", timeout=60)
        assert chart.headers["content-type"] == "image/png" and chart.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert requests.get(f"{service}/charts/nope.png", timeout=10).status_code == 404


def test_page_in_a_headless_browser(service: str, tmp_path: Path) -> None:
    from PIL import Image
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    assert chromium, "no chromium on PATH: ./scripts/bootstrap.sh installs Debian's (apt-get install chromium)"
    upload = tmp_path / "reviews.csv"
    upload.write_text("text\nThe zipper broke on day one\n\"Lovely and warm, true to size\"\n")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 1400})
            page.goto(service, wait_until="networkidle")
            # Both charts loaded as images, and the topic table has a row per topic.
            widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.naturalWidth)")
            assert len(widths) == 2 and min(widths) > 100, widths
            assert page.locator("#topics tr").count() == 5
            page.fill("#text", "Terrible: it broke in a week and the seller never answered.")
            page.click("#predict")
            page.wait_for_function("document.getElementById('result').textContent.includes('confidence')")
            assert '"sentiment"' in page.text_content("#result")
            page.set_input_files("#csv", str(upload))
            with page.expect_download() as download:
                page.click("#upload")
            scored = tmp_path / "scored.csv"
            download.value.save_as(scored)
            assert list(pd.read_csv(scored)["status"]) == ["ok", "ok"]
            assert page.text_content("#upload-status") == "scored: reviews.scored.csv"
            shot = tmp_path / "page.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    image = Image.open(shot).convert("RGB")
    assert image.size[0] == 1100 and image.size[1] >= 1400
    # The charts' bar colours are on the page: the screenshot shows rendered charts, not a blank page.
    colours = set(image.resize((275, image.size[1] // 4)).getdata())
    assert any(r > 150 and g < 90 and b < 80 for r, g, b in colours), "no red (negative) bars in the screenshot"
    assert any(g > 140 and r < 90 and b < 130 for r, g, b in colours), "no green (positive) bars in the screenshot"
