// One product: summary, per-minute sentiment chart (uPlot), complaint keywords, reviews.
"use strict";

(() => {
  const { el, fmt, fillTable, showError } = RP;
  const $ = (id) => document.getElementById(id);
  const prefix = "/products/";
  const productId = decodeURIComponent(location.pathname.slice(prefix.length));
  const hours = Math.min(24, Math.max(1, Number(new URLSearchParams(location.search).get("hours")) || 6));
  let chart = null;

  $("product-id").textContent = productId;
  $("hours").textContent = String(hours);
  document.title = productId + " · ReviewPulse";

  function drawChart(minutes) {
    const data = [minutes.minutes, minutes.negative, minutes.neutral, minutes.positive];
    const width = Math.max(320, $("chart").clientWidth || 900);
    if (chart) {
      chart.setSize({ width, height: 260 });
      chart.setData(data);
      return;
    }
    chart = new uPlot(
      {
        width,
        height: 260,
        scales: { x: { time: true } },
        axes: [{}, { label: "评论/分钟 reviews per minute" }],
        series: [
          {},
          { label: "负面 negative", stroke: "#c0392b", width: 2, points: { show: true, size: 4 } },
          { label: "中性 neutral", stroke: "#999", width: 1, points: { show: true, size: 3 } },
          { label: "正面 positive", stroke: "#27ae60", width: 2, points: { show: true, size: 4 } },
        ],
      },
      data,
      $("chart"),
    );
  }

  function summary(s) {
    if (!s) return;
    $("category").textContent = s.category;
    $("negative-1h").textContent = fmt.pct(s.negative_ratio_1h);
    $("reviews-1h").textContent = fmt.num(s.reviews_1h) + " 条 reviews";
    $("negative-24h").textContent = fmt.pct(s.negative_ratio_24h);
    $("trend-24h").textContent = "趋势 trend " + fmt.pp(s.trend_24h) + " · " + fmt.num(s.reviews_24h) + " 条";
    $("agreement").textContent = fmt.pct(s.agreement_24h);
    $("rated").textContent = fmt.num(s.rated_24h) + " 条带评分 rated";
  }

  async function refresh() {
    try {
      const url = "/dashboard/api/products/" + encodeURIComponent(productId) + "?hours=" + hours;
      const body = await RP.getJson(url);
      summary(body.summary);
      drawChart(body.minutes);
      fillTable(
        $("complaints"),
        body.complaints,
        (c) =>
          el("tr", {}, [
            el("td", { text: c.keyword }),
            el("td", { class: "n", text: fmt.num(c.reviews) }),
            el("td", { class: "n", text: fmt.num(c.recent) }),
          ]),
        "没有投诉关键词 no complaint keywords",
      );
      fillTable($("reviews"), body.reviews, (r) =>
        el("tr", { "data-id": r.review_id }, [
          el("td", { text: fmt.time(r.created_at) }),
          el("td", { class: "n", text: r.rating === null ? "–" : "★".repeat(r.rating) }),
          el("td", {}, [el("span", { class: "sentiment " + r.sentiment, text: RP.SENTIMENT[r.sentiment] || r.sentiment })]),
          el("td", { class: "n", text: fmt.pct(r.confidence, 1) }),
          el("td", { class: "review-text", text: r.text }),
          el("td", { class: "keywords", text: r.complaint_keywords.join("、") }),
        ]),
      );
      showError($("product-error"), null);
      $("updated").textContent = new Date().toLocaleTimeString("zh-CN", { hour12: false });
    } catch (error) {
      showError($("product-error"), error);
    }
  }

  RP.every(15, refresh);
})();
