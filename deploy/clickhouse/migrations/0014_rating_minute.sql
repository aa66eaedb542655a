-- Per minute and product: distinct rated reviews by the model's sentiment and by the label
-- the customer's own rating implies (>= 4 positive, 3 neutral, <= 2 negative).
CREATE TABLE IF NOT EXISTS rating_minute
(
    minute DateTime('UTC'),
    product_id String,
    category String,
    sentiment Enum8('negative' = -1, 'neutral' = 0, 'positive' = 1),
    rating_sentiment Enum8('negative' = -1, 'neutral' = 0, 'positive' = 1),
    reviews AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (product_id, minute, sentiment, rating_sentiment, category)
