CREATE MATERIALIZED VIEW IF NOT EXISTS negative_keywords_hour_mv TO negative_keywords_hour
AS SELECT
    toStartOfHour(created_at) AS hour,
    product_id,
    category,
    keyword,
    toUInt8(has(complaint_keywords, keyword)) AS is_complaint,
    uniqExactState(review_id) AS reviews
FROM reviews
ARRAY JOIN arrayDistinct(arrayConcat(keywords, complaint_keywords)) AS keyword
WHERE sentiment = 'negative'
GROUP BY hour, product_id, category, keyword, is_complaint;
