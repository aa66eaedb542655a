-- Rating feedback: per minute, category and model version, the distinct RATED reviews by
-- model sentiment x rated label (the star rating as a weak label, mapped as in training,
-- model.labels.RATINGS: 4-5 positive, 3 neutral, 1-2 negative). Each (sentiment, rated)
-- pair is a cell of the confusion matrix; agreement = reviews with sentiment = rated over
-- all rated reviews. Counts are uniqExact states of review_id (uniqExactMerge), exact after
-- duplicate delivery. Reviews without a rating are not in this table. Backfilled by 0023.
CREATE TABLE IF NOT EXISTS feedback_minute
(
    minute DateTime('UTC'),
    category String,
    model_version String,
    sentiment Enum8('negative' = -1, 'neutral' = 0, 'positive' = 1),
    rated Enum8('negative' = -1, 'neutral' = 0, 'positive' = 1),
    reviews AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, category, model_version, sentiment, rated);

CREATE MATERIALIZED VIEW IF NOT EXISTS feedback_minute_mv TO feedback_minute
AS SELECT
    toStartOfMinute(created_at) AS minute,
    category,
    model_version,
    sentiment,
    CAST(multiIf(ifNull(rating, 0) >= 4, 'positive', ifNull(rating, 0) = 3, 'neutral', 'negative')
         AS Enum8('negative' = -1, 'neutral' = 0, 'positive' = 1)) AS rated,
    uniqExactState(review_id) AS reviews
FROM reviews
WHERE isNotNull(rating)
GROUP BY minute, category, model_version, sentiment, rated;
