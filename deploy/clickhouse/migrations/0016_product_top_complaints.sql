-- The five most frequent complaint keywords per product over the last 24 h, with the last
-- hour's and the previous 24 h's counts of distinct negative reviews mentioning them.
CREATE VIEW IF NOT EXISTS product_top_complaints AS
SELECT product_id, category, keyword, reviews_1h, reviews_24h, reviews_prev_24h,
       toInt64(reviews_24h) - toInt64(reviews_prev_24h) AS trend_24h
FROM
(
    SELECT
        product_id,
        any(category) AS category,
        keyword,
        sumIf(n, minute > now_minute - 3600) AS reviews_1h,
        sumIf(n, minute > now_minute - 86400) AS reviews_24h,
        sumIf(n, minute <= now_minute - 86400) AS reviews_prev_24h
    FROM
    (
        SELECT product_id, category, keyword, minute, toStartOfMinute(now()) AS now_minute,
               uniqExactMerge(reviews) AS n
        FROM complaint_minute
        WHERE minute > toStartOfMinute(now()) - 172800
        GROUP BY product_id, category, keyword, minute
    )
    GROUP BY product_id, keyword
    HAVING reviews_24h > 0
)
ORDER BY product_id, reviews_24h DESC, keyword
LIMIT 5 BY product_id
