-- Shadow scoring (reviewpulse shadow): a candidate model's prediction of a live review beside
-- the served model's, one row per review and candidate version. A redelivered review
-- collapses to one row at merge time (newest scored_at wins): read with FINAL. Partitioned by
-- the review's created_at, which never changes, so a review's rows always meet in one
-- partition. rating 0 = no rating. Seconds are the forward time per review of each model.
CREATE TABLE IF NOT EXISTS shadow_predictions
(
    review_id String,
    candidate_version String,
    served_version String,
    category String,
    rating UInt8,
    served_sentiment Enum8('negative' = -1, 'neutral' = 0, 'positive' = 1),
    candidate_sentiment Enum8('negative' = -1, 'neutral' = 0, 'positive' = 1),
    served_confidence Float32,
    candidate_confidence Float32,
    candidate_prob_negative Float32,
    candidate_prob_neutral Float32,
    candidate_prob_positive Float32,
    served_seconds Float32,
    candidate_seconds Float32,
    created_at DateTime('UTC'),
    scored_at DateTime('UTC')
)
ENGINE = ReplacingMergeTree(scored_at)
PARTITION BY toYYYYMM(created_at)
ORDER BY (candidate_version, review_id);
