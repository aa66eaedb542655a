// The live page: fills each section from its JSON route and refreshes it.
"use strict";

(() => {
  const { el, fmt, fillTable, showError, sparkline, productLink, keywordChips } = RP;
  const $ = (id) => document.getElementById(id);
  const PART_LABELS = {
    broker: "Broker 消息",
    clickhouse: "ClickHouse 存储",
    model: "Model 模型",
    alerts: "Alerts 告警",
  };

  function stamp() {
    $("updated").textContent = new Date().toLocaleTimeString("zh-CN", { hour12: false });
  }

  async function refreshHealth() {
    const target = $("health");
    try {
      const body = await RP.getJson("/health");
      const pills = Object.entries(body)
        .filter(([, part]) => part && typeof part === "object" && "status" in part)
        .map(([name, part]) =>
          el("span", {
            class: "pill " + (part.status === "ok" ? "ok" : "bad"),
            title: part.error || part.last_error || part.status,
            "data-part": name,
            text: (PART_LABELS[name] || name) + ": " + part.status,
          }),
        );
      target.replaceChildren(...pills);
    } catch (error) {
      target.replaceChildren(el("span", { class: "pill bad", text: "worker: " + error.message }));
    }
  }

  async function refreshPipeline() {
    try {
      const p = await RP.getJson("/dashboard/api/pipeline");
      $("reviews-per-s").textContent = fmt.num(p.reviews_per_s, 1);
      $("processed-total").textContent = "累计 processed " + fmt.num(p.processed_total);
      $("lag").textContent = fmt.seconds(p.lag_seconds);
      $("lag-note").textContent = "最旧未处理消息 oldest unprocessed";
      $("dlq-share").textContent = fmt.pct(p.dead_letter_share, 1);
      $("dlq-total").textContent = fmt.num(p.dead_lettered_total) + " / " + fmt.num(p.consumed_total);
      const batch = p.latency.batch;
      const e2e = p.latency.end_to_end;
      $("batch-latency").textContent = fmt.seconds(batch.p50) + " / " + fmt.seconds(batch.p95);
      $("batch-note").textContent = "p50 / p95 · " + fmt.num(batch.count) + " batches";
      $("e2e-latency").textContent = fmt.seconds(e2e.p50) + " / " + fmt.seconds(e2e.p95);
      $("e2e-note").textContent = "p50 / p95 · created_at → acked";
      $("model-version").textContent = p.model.version;
      $("model-runtime").textContent = p.model.runtime + " · " + p.model.follows;
      $("uptime").textContent = fmt.duration(p.uptime_s);
      const raised = Object.entries(p.alerts_raised || {})
        .map(([kind, n]) => kind + " " + n)
        .join(", ");
      $("alerts-raised").textContent = raised ? "告警 alerts: " + raised : "";
      fillTable(
        $("dead-letters"),
        p.dead_letters,
        (d) =>
          el("tr", {}, [
            el("td", { text: d.reason }),
            el("td", { class: "n", text: fmt.num(d.total) }),
            el("td", { class: "n", text: fmt.pct(d.share, 1) }),
            el("td", { class: "n", text: d.recent === null ? "–" : fmt.num(d.recent) }),
          ]),
        "没有死信 no dead letters",
      );
      showError($("pipeline-error"), null);
    } catch (error) {
      showError($("pipeline-error"), error);
    }
  }

  function trendCell(trend) {
    const cls = trend === null ? "n" : trend > 0.005 ? "n worse" : trend < -0.005 ? "n better" : "n";
    return el("td", { class: cls, text: fmt.pp(trend) });
  }

  function rankingRow(row, key) {
    const cells = [];
    if (key === "product_id") {
      cells.push(el("td", {}, [productLink(row.product_id)]));
      cells.push(el("td", { text: row.category }));
    } else {
      cells.push(el("td", { text: row.category }));
    }
    cells.push(el("td", { class: "n", text: fmt.num(row.reviews) }));
    cells.push(el("td", { class: "n ratio", text: fmt.pct(row.negative_ratio) }));
    cells.push(trendCell(row.trend));
    cells.push(el("td", {}, [sparkline(row.sparkline)]));
    cells.push(el("td", {}, [keywordChips(row.complaints)]));
    return el("tr", { "data-id": row[key] }, cells);
  }

  async function refreshReputation() {
    try {
      const body = await RP.getJson("/dashboard/api/reputation");
      for (const [name, period] of Object.entries(body.periods)) {
        fillTable($("products-" + name), period.products, (r) => rankingRow(r, "product_id"));
        fillTable($("categories-" + name), period.categories, (r) => rankingRow(r, "category"));
      }
      showError($("reputation-error"), null);
      stamp();
    } catch (error) {
      showError($("reputation-error"), error);
    }
  }

  function figuresText(figures) {
    const f = figures || {};
    const parts = [];
    if ("window_hits" in f && "window_reviews" in f) {
      parts.push(f.window_hits + "/" + f.window_reviews + " in " + (f.window_minutes || "?") + " min");
    }
    if ("rate" in f) parts.push("rate " + fmt.pct(f.rate));
    if ("normal_rate" in f) parts.push("normal " + fmt.pct(f.normal_rate));
    if ("evidence" in f) parts.push("evidence " + fmt.num(f.evidence, 1));
    if (!parts.length) {
      for (const [k, v] of Object.entries(f).slice(0, 4)) parts.push(k + " " + v);
    }
    return parts.join(" · ");
  }

  function subjectCell(alert) {
    const children = [];
    if (alert.subject_type === "product") children.push(productLink(alert.subject));
    else children.push(el("span", { text: alert.subject }));
    if (alert.category && alert.category !== alert.subject) {
      children.push(el("small", { text: " " + alert.category }));
    }
    return el("td", {}, children);
  }

  function samplesCell(alert) {
    const list = el(
      "ul",
      { class: "samples" },
      alert.samples.map((s) =>
        el("li", {}, [
          el("span", { class: "sentiment " + s.sentiment, text: s.sentiment }),
          " ",
          el("span", { class: "review-text", text: s.text }),
        ]),
      ),
    );
    const complaints = keywordChips(alert.top_complaints);
    return el("td", {}, [complaints, list]);
  }

  async function refreshAlerts() {
    try {
      const body = await RP.getJson("/dashboard/api/alerts");
      fillTable(
        $("alerts-table"),
        body.alerts,
        (a) =>
          el("tr", { "data-id": a.alert_id, "data-subject": a.subject }, [
            el("td", { text: fmt.time(a.raised_at) }),
            el("td", { text: a.kind }),
            el("td", {}, [el("span", { class: "severity " + a.severity, text: a.severity })]),
            subjectCell(a),
            el("td", { class: "figures", text: figuresText(a.figures) }),
            el("td", { class: "message", text: a.message }),
            samplesCell(a),
          ]),
        "最近 7 天没有告警 no alerts in the last 7 days",
      );
      showError($("alerts-error"), null);
    } catch (error) {
      showError($("alerts-error"), error);
    }
  }

  function cellText(value) {
    if (value === null || value === undefined) return "–";
    if (typeof value === "number" && !Number.isInteger(value)) return value.toFixed(3);
    return String(value);
  }

  async function refreshModel() {
    const target = $("model-sections");
    try {
      const body = await RP.getJson("/dashboard/api/model");
      const blocks = body.sections.map((section) => {
        const table = el("table", { class: "compact" }, [
          el("caption", { text: section.title }),
          el("thead", {}, [el("tr", {}, section.columns.map((c) => el("th", { text: c })))]),
          el("tbody"),
        ]);
        fillTable(
          table,
          section.rows,
          (row) => el("tr", {}, section.columns.map((c) => el("td", { text: cellText(row[c]) }))),
          "暂无数据 no rated or classified traffic in the window",
        );
        return table;
      });
      target.replaceChildren(...blocks);
      showError($("model-error"), null);
    } catch (error) {
      showError($("model-error"), error);
    }
  }

  RP.every(5, refreshHealth);
  RP.every(5, refreshPipeline);
  RP.every(15, refreshReputation);
  RP.every(15, refreshAlerts);
  RP.every(60, refreshModel);
})();
