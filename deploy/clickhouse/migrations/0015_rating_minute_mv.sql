CREATE MATERIALIZED VIEW IF NOT EXISTS rating_minute_mv TO rating_minute
AS SELECT
    toStartOfMinute(created_at) AS minute,
    product_id,
    category,
    sentiment,
    CAST(multiIf(assumeNotNull(rating) >= 4, 'positive', assumeNotNull(rating) = 3, 'neutral', 'negative')
         AS Enum8('negative' = -1, 'neutral' = 0, 'positive' = 1)) AS rating_sentiment,
    uniqExactState(review_id) AS reviews
FROM reviews
WHERE isNotNull(rating)
GROUP BY minute, product_id, category, sentiment, rating_sentiment
