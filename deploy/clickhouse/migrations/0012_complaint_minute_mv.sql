CREATE MATERIALIZED VIEW IF NOT EXISTS complaint_minute_mv TO complaint_minute
AS SELECT
    toStartOfMinute(created_at) AS minute,
    product_id,
    category,
    keyword,
    uniqExactState(review_id) AS reviews
FROM reviews
ARRAY JOIN complaint_keywords AS keyword
WHERE sentiment = 'negative'
GROUP BY minute, product_id, category, keyword
