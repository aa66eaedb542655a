// Helpers shared by the two pages. Data only ever reaches the DOM as textContent,
// attribute values set through the DOM API, or numbers drawn into SVG: never as markup.
"use strict";

const RP = (() => {
  // A bearer token for workers that require one (REVIEWPULSE_WEB_TOKEN): open the page as
  // /#token=..., it is kept in this tab's sessionStorage and never put in a URL we request.
  const TOKEN_KEY = "reviewpulse.token";
  if (location.hash.startsWith("#token=")) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(location.hash.slice(7)));
    history.replaceState(null, "", location.pathname + location.search);
  }

  async function getJson(url) {
    const headers = { Accept: "application/json" };
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = "Bearer " + token;
    const response = await fetch(url, { headers, cache: "no-store" });
    let body = null;
    try {
      body = await response.json();
    } catch (error) {
      body = null;
    }
    if (!response.ok && !(body && response.status === 503 && url === "/health")) {
      const message = body && body.error ? body.error : response.status + " " + response.statusText;
      throw new Error(message);
    }
    return body;
  }

  function el(tag, props, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === undefined || value === null) continue;
      if (key === "text") node.textContent = String(value);
      else if (key === "class") node.className = value;
      else if (key === "href") node.setAttribute("href", value);
      else if (key === "title") node.title = String(value);
      else if (key.startsWith("data-")) node.setAttribute(key, String(value));
      else throw new Error("el(): unsupported property " + key);
    }
    for (const child of children || []) {
      if (child !== null && child !== undefined) {
        node.append(child instanceof Node ? child : document.createTextNode(String(child)));
      }
    }
    return node;
  }

  function clear(node) {
    node.replaceChildren();
    return node;
  }

  const fmt = {
    pct(value, digits = 0) {
      return value === null || value === undefined ? "–" : (100 * value).toFixed(digits) + "%";
    },
    pp(value) {
      if (value === null || value === undefined) return "–";
      const points = 100 * value;
      return (points > 0 ? "+" : "") + points.toFixed(0) + " pp";
    },
    num(value, digits = 0) {
      if (value === null || value === undefined) return "–";
      return Number(value).toLocaleString("en-US", {
        minimumFractionDigits: digits,
        maximumFractionDigits: digits,
      });
    },
    seconds(value) {
      if (value === null || value === undefined) return "–";
      if (value < 1) return (1000 * value).toFixed(0) + " ms";
      if (value < 120) return value.toFixed(1) + " s";
      return (value / 60).toFixed(1) + " min";
    },
    duration(seconds) {
      if (seconds === null || seconds === undefined) return "–";
      const s = Math.floor(seconds);
      const d = Math.floor(s / 86400);
      const h = Math.floor((s % 86400) / 3600);
      const m = Math.floor((s % 3600) / 60);
      if (d) return d + "d " + h + "h";
      if (h) return h + "h " + m + "m";
      return m + "m " + (s % 60) + "s";
    },
    time(iso) {
      if (!iso) return "–";
      const date = new Date(iso);
      return date.toLocaleString("zh-CN", { hour12: false });
    },
  };

  const SENTIMENT = {
    negative: "负面 negative",
    neutral: "中性 neutral",
    positive: "正面 positive",
  };

  // A small SVG polyline of values in 0..1 (null: no reviews in that bucket).
  function sparkline(values, width = 120, height = 28) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("width", width);
    svg.setAttribute("height", height);
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    svg.setAttribute("class", "spark");
    const n = values.length;
    if (!n) return svg;
    const step = n > 1 ? (width - 4) / (n - 1) : 0;
    let points = [];
    const segments = [];
    values.forEach((value, i) => {
      if (value === null || value === undefined) {
        if (points.length) segments.push(points);
        points = [];
        return;
      }
      const x = 2 + i * step;
      const y = 2 + (1 - Math.max(0, Math.min(1, Number(value)))) * (height - 4);
      points.push(x.toFixed(1) + "," + y.toFixed(1));
    });
    if (points.length) segments.push(points);
    for (const segment of segments) {
      if (segment.length === 1) {
        const [x, y] = segment[0].split(",");
        const dot = document.createElementNS(ns, "circle");
        dot.setAttribute("cx", x);
        dot.setAttribute("cy", y);
        dot.setAttribute("r", "1.8");
        svg.append(dot);
      } else {
        const line = document.createElementNS(ns, "polyline");
        line.setAttribute("points", segment.join(" "));
        svg.append(line);
      }
    }
    return svg;
  }

  function productLink(productId) {
    return el("a", { href: "/products/" + encodeURIComponent(productId), text: productId });
  }

  function keywordChips(complaints) {
    return el(
      "span",
      { class: "chips" },
      (complaints || []).map((c) =>
        el("span", { class: "chip", title: c.reviews + " 条差评 negative reviews" }, [
          c.keyword,
          el("small", { text: " " + c.reviews }),
        ]),
      ),
    );
  }

  function fillTable(table, rows, render, emptyText) {
    const body = clear(table.tBodies[0] || table.appendChild(document.createElement("tbody")));
    if (!rows.length) {
      const cells = table.tHead ? table.tHead.rows[0].cells.length : 1;
      const cell = el("td", { class: "empty", text: emptyText || "暂无数据 no data yet" });
      cell.colSpan = cells;
      body.append(el("tr", {}, [cell]));
      return;
    }
    for (const row of rows) body.append(render(row));
  }

  function showError(target, error) {
    target.textContent = error ? "⚠ " + error.message : "";
    target.hidden = !error;
  }

  // Run `task` now and then every `seconds`, never overlapping itself.
  function every(seconds, task) {
    const run = async () => {
      try {
        await task();
      } finally {
        setTimeout(run, seconds * 1000);
      }
    };
    run();
  }

  return {
    getJson,
    el,
    clear,
    fmt,
    SENTIMENT,
    sparkline,
    productLink,
    keywordChips,
    fillTable,
    showError,
    every,
  };
})();
