CREATE MATERIALIZED VIEW IF NOT EXISTS sentiment_minute_mv TO sentiment_minute
AS SELECT
    toStartOfMinute(created_at) AS minute,
    product_id,
    category,
    sentiment,
    toUInt8(ifNull(rating, 0)) AS rating,
    uniqExactState(review_id) AS reviews,
    sumState(toFloat64(confidence)) AS confidence_sum
FROM reviews
GROUP BY minute, product_id, category, sentiment, rating;
