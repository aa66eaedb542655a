CREATE MATERIALIZED VIEW IF NOT EXISTS negative_keyword_minute_mv TO negative_keyword_minute
AS SELECT
    toStartOfMinute(created_at) AS minute,
    product_id,
    category,
    keyword,
    toUInt8(has(complaint_keywords, keyword)) AS curated,
    uniqExactState(review_id) AS reviews
FROM reviews
ARRAY JOIN arrayDistinct(arrayConcat(keywords, complaint_keywords)) AS keyword
WHERE sentiment = 'negative'
GROUP BY minute, product_id, category, keyword, curated;
