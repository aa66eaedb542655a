"""The live page in a real browser (Debian's chromium, headless, driven by selenium) while a
real worker processes a replay: tables fill with the replayed products, the alert the engine
raises shows up, a product page lists that product's reviews, hostile text stays text, and
screenshots are written to ``.run/artifacts/`` (the README's picture comes from there).

Needs the served model in ``model/registry`` (the worker loads it) and ``chromium`` +
``chromium-driver`` (``deploy/local/setup.sh`` installs them).
"""

from __future__ import annotations

import json
import shutil
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from model.corpus import SHIPPED_CORPUS
from model.registry import resolve_model_dir
from stream.config import PROJECT_ROOT, WorkerConfig
from stream.events import format_timestamp
from stream.kafka import ensure_topics
from stream.local.processes import free_port
from stream.metrics import sample_total
from stream.replay import ReplayEvent, read_corpus
from stream.sink.connection import connect
from stream.sink.migrations import migrate
from stream.sink.store import ReviewStore
from tests.stream.harness import WorkerProcess, produce, wait_for
from tests.stream.reputation.traffic import Traffic, category, product_id

pytestmark = [pytest.mark.broker, pytest.mark.clickhouse, pytest.mark.slow, pytest.mark.browser]

CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = PROJECT_ROOT / ".run" / "artifacts"
XSS = "<img src=x onerror=alert(1)>"
XSS_PRODUCT = "<img src=x onerror=alert(2)>"
REPLAYED = ("R-手机-1", "R-衣服-2", "R-热水器-3", XSS_PRODUCT)
MINUTE = timedelta(minutes=1)
# Record any alert() instead of blocking on it; runs before the page's own scripts.
TRAP_ALERTS = "window.__alerts = []; window.alert = (m) => window.__alerts.push(String(m));"


@pytest.fixture
def browser() -> Iterator[Any]:
    if not CHROMEDRIVER.exists() or shutil.which("chromium") is None:
        pytest.skip("chromium and chromium-driver are not installed (deploy/local/setup.sh)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--lang=zh-CN"):
        options.add_argument(argument)
    options.add_argument("--window-size=1500,2000")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": TRAP_ALERTS})
    try:
        yield driver
    finally:
        driver.quit()


def replay_events(now: datetime) -> list[ReplayEvent]:
    """Negative corpus reviews for the replayed products over the last 10 minutes."""
    negative = [s for s in read_corpus(SHIPPED_CORPUS) if s.label == 0][:200]
    events = []
    for i in range(120):
        product = REPLAYED[i % len(REPLAYED)]
        source = negative[i]
        event = {
            "schema_version": 1,
            "review_id": f"br-{i}",
            "product_id": product,
            "category": product.split("-")[1] if product.startswith("R-") else "衣服",
            "user_id": f"u{i}",
            "text": source.text,
            "rating": 1 + i % 2,
            "created_at": format_timestamp(now - MINUTE * (10 - i / 12)),
        }
        events.append(
            ReplayEvent(
                key=product.encode(),
                value=json.dumps(event, ensure_ascii=False).encode(),
                review_id=event["review_id"],
                product_id=product,
                category=event["category"],
                created_at=event["created_at"],
                expected_reason=None,
            )
        )
    return events


def stored_rows(now: datetime) -> list[Any]:
    """Classified rows written straight to ClickHouse: two hours of a steady shop in which
    P007 turns bad 12 minutes ago (the engine alerts on it), and a review of R-手机-1 whose
    stored text is markup (the worker itself would strip the tag)."""
    traffic = Traffic(seed=31)
    start = now - timedelta(hours=2)
    traffic.shop([i for i in range(20) if i != 7], start, now)
    traffic.reviews(product_id(7), category(7), start, now - 12 * MINUTE)
    traffic.reviews(
        product_id(7), category(7), now - 12 * MINUTE, now, negative_share=0.85, complaint_share=0.9
    )
    [xss] = traffic.burst(REPLAYED[0], "手机", [now - 30 * MINUTE])
    traffic.rows[-1] = replace(xss, text=XSS, review_id="br-xss")
    return traffic.rows


def page_url(worker: WorkerProcess, path: str) -> str:
    return worker.url(urllib.parse.quote(path))


def wait_in(driver: Any, timeout_s: float, what: str, condition: Callable[[Any], Any]) -> Any:
    """Wait for ``condition``; on a timeout keep the screen and the DOM as artifacts."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout_s, poll_frequency=0.5).until(condition, what)
    except TimeoutException:
        driver.save_screenshot(str(ARTIFACTS / "dashboard-failed.png"))
        (ARTIFACTS / "dashboard-failed.html").write_text(driver.page_source, encoding="utf-8")
        logs = driver.get_log("browser")
        raise AssertionError(f"timed out waiting for {what}; browser log: {logs}") from None


def row_ids(driver: Any, table: str) -> list[str]:
    from selenium.webdriver.common.by import By

    rows = driver.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr[data-id]")
    return [row.get_attribute("data-id") for row in rows]


def test_the_live_page_in_a_real_browser(
    make_config: Callable[..., WorkerConfig], browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    config = make_config(web_port=free_port(), model_max_length=64, alert_interval_s=1.0)
    try:
        resolve_model_dir(config.model.model_registry, config.model.model_name, "current")
    except FileNotFoundError:
        pytest.skip("no served model in model/registry (train one: reviewpulse train)")
    ensure_topics(config.kafka)
    now = datetime.now(UTC)
    ch = connect(config.clickhouse)
    try:
        migrate(ch)
        ReviewStore(ch).write_reviews(stored_rows(now))
    finally:
        ch.close()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / "dashboard-worker.log"
    log.unlink(missing_ok=True)

    with WorkerProcess(config, log) as worker:
        wait_for(lambda: worker.get("/health") is not None, timeout_s=120, what="the worker")
        events = replay_events(now)
        produce(config.kafka, events)

        def processed() -> bool:
            text = worker.metrics_text()
            return sample_total(text, "reviewpulse_events_processed_total") >= len(events)

        wait_for(processed, timeout_s=90, what="the replay", worker=worker)

        browser.get(worker.url("/"))
        wait_in(
            browser,
            30,
            "the replayed products in the last hour's ranking",
            lambda d: set(REPLAYED) <= set(row_ids(d, "products-1h")),
        )
        assert set(REPLAYED) <= set(row_ids(browser, "products-24h"))
        assert {"手机", "衣服"} <= set(row_ids(browser, "categories-1h"))
        wait_in(
            browser,
            90,
            "the engine's alert on P007",
            lambda d: d.find_elements(By.CSS_SELECTOR, '#alerts-table tr[data-subject="P007"]'),
        )
        [alert] = browser.find_elements(By.CSS_SELECTOR, '#alerts-table tr[data-subject="P007"]')
        assert "critical" in alert.text and "P007" in alert.text
        wait_in(
            browser,
            20,
            "the pipeline figures",
            lambda d: d.find_element(By.ID, "model-version").text not in ("", "–"),
        )
        pills = {
            p.get_attribute("data-part"): p.text
            for p in browser.find_elements(By.CSS_SELECTOR, "#health .pill")
        }
        assert {"broker", "clickhouse", "model"} <= set(pills) and "ok" in pills["model"]
        xss_link = browser.find_element(
            By.CSS_SELECTOR, f'#products-1h tr[data-id="{XSS_PRODUCT}"] a'
        )
        assert xss_link.text == XSS_PRODUCT
        assert browser.execute_script('return document.fonts.check("16px \\"Noto Sans CJK SC\\"")')
        browser.save_screenshot(str(ARTIFACTS / "dashboard.png"))
        assert not browser.find_elements(By.CSS_SELECTOR, "img")
        assert browser.execute_script("return window.__alerts") == []

        browser.get(page_url(worker, "/products/" + REPLAYED[0]))
        wait_in(
            browser,
            30,
            "the product's reviews",
            lambda d: "br-xss" in row_ids(d, "reviews") and len(row_ids(d, "reviews")) > 5,
        )
        ids = row_ids(browser, "reviews")
        replayed_ids = {f"br-{i}" for i in range(0, 120, len(REPLAYED))}
        assert set(ids) - {"br-xss"} <= replayed_ids and len(ids) == len(replayed_ids) + 1
        texts = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#reviews .review-text")]
        assert XSS in texts
        assert browser.find_element(By.ID, "product-id").text == REPLAYED[0]
        assert browser.find_elements(By.CSS_SELECTOR, "#chart canvas")  # uPlot drew
        assert not browser.find_elements(By.CSS_SELECTOR, "img")
        assert browser.execute_script("return window.__alerts") == []
        browser.save_screenshot(str(ARTIFACTS / "dashboard-product.png"))

        browser.get(page_url(worker, "/products/" + XSS_PRODUCT))
        wait_in(browser, 30, "the XSS product's reviews", lambda d: len(row_ids(d, "reviews")) > 0)
        assert browser.find_element(By.ID, "product-id").text == XSS_PRODUCT
        assert not browser.find_elements(By.CSS_SELECTOR, "img")
        assert browser.execute_script("return window.__alerts") == []
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
