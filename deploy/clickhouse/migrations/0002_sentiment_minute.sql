-- Per minute, product, category, sentiment and star rating: the distinct reviews (uniqExact
-- state of review_id, exact after duplicate delivery) and the sum of model confidence.
-- rating is the review's 1-5 stars, 0 when the event carried none, so the count of rated
-- reviews and the sum of their ratings are exact too: sumIf(n, rating > 0), sum(n * rating).
-- Read with -Merge, e.g.
--   SELECT minute, product_id, sentiment, uniqExactMerge(reviews) AS n ... GROUP BY ...
-- Merging over sentiment or rating rows still counts each review once (a review has one of
-- each). confidence_sum is exact as long as the store's skip-existing check holds (one
-- writer per review_id); the counts stay exact even when it does not.
CREATE TABLE IF NOT EXISTS sentiment_minute
(
    minute DateTime('UTC'),
    product_id String,
    category String,
    sentiment Enum8('negative' = -1, 'neutral' = 0, 'positive' = 1),
    rating UInt8,
    reviews AggregateFunction(uniqExact, String),
    confidence_sum AggregateFunction(sum, Float64)
)
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, product_id, category, sentiment, rating);
