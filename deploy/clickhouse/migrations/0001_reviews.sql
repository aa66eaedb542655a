-- One row per classified review, keyed by review_id. A redelivered review collapses to one
-- row at merge time (newest processed_at wins); read with FINAL for exact results. The
-- review store also skips review_ids that are already present, so the materialized views
-- below see each review once.
CREATE TABLE IF NOT EXISTS reviews
(
    review_id String,
    product_id String,
    category String,
    user_id String,
    rating Nullable(UInt8),
    text String,
    sentiment Enum8('negative' = -1, 'neutral' = 0, 'positive' = 1),
    confidence Float32,
    prob_negative Float32,
    prob_neutral Float32,
    prob_positive Float32,
    keywords Array(String),
    complaint_keywords Array(String),
    model_version String,
    created_at DateTime('UTC'),
    processed_at DateTime('UTC')
)
ENGINE = ReplacingMergeTree(processed_at)
PARTITION BY toYYYYMM(created_at)
ORDER BY review_id;
