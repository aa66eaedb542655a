-- Traffic profile for drift monitoring: per minute, category and model version, the
-- distinct reviews by model sentiment, confidence bin and cleaned-text length bin, with the
-- tokens the model saw and the unknown ones among them. The bins are those of
-- model.profile (CONFIDENCE_EDGES, TEXT_LENGTH_EDGES: each bin's lower bound; bin = how
-- many edges after the first the value reaches), so a window here compares bin for bin
-- with the reference profile in the model card (confidence is compared as stored, Float32,
-- so a value on an edge lands in the bin it starts). Changing the edges needs a new migration.
-- Counts: uniqExactMerge(reviews), exact after duplicate delivery. token_sum and
-- unknown_token_sum are sums (sumMerge), exact as long as the store's skip-existing check
-- holds, like sentiment_minute's confidence_sum. Backfilled (counts only) by 0023.
CREATE TABLE IF NOT EXISTS traffic_minute
(
    minute DateTime('UTC'),
    category String,
    model_version String,
    sentiment Enum8('negative' = -1, 'neutral' = 0, 'positive' = 1),
    confidence_bin UInt8,
    length_bin UInt8,
    reviews AggregateFunction(uniqExact, String),
    token_sum AggregateFunction(sum, UInt64),
    unknown_token_sum AggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, category, model_version, sentiment, confidence_bin, length_bin);

CREATE MATERIALIZED VIEW IF NOT EXISTS traffic_minute_mv TO traffic_minute
AS SELECT
    toStartOfMinute(created_at) AS minute,
    category,
    model_version,
    sentiment,
    toUInt8((confidence >= toFloat32(0.4)) + (confidence >= toFloat32(0.45))
        + (confidence >= toFloat32(0.5)) + (confidence >= toFloat32(0.55))
        + (confidence >= toFloat32(0.6)) + (confidence >= toFloat32(0.65))
        + (confidence >= toFloat32(0.7)) + (confidence >= toFloat32(0.75))
        + (confidence >= toFloat32(0.8)) + (confidence >= toFloat32(0.85))
        + (confidence >= toFloat32(0.9)) + (confidence >= toFloat32(0.95))) AS confidence_bin,
    toUInt8((lengthUTF8(text) >= 10) + (lengthUTF8(text) >= 20) + (lengthUTF8(text) >= 40)
        + (lengthUTF8(text) >= 80) + (lengthUTF8(text) >= 160)
        + (lengthUTF8(text) >= 320)) AS length_bin,
    uniqExactState(review_id) AS reviews,
    sumState(toUInt64(tokens)) AS token_sum,
    sumState(toUInt64(unknown_tokens)) AS unknown_token_sum
FROM reviews
GROUP BY minute, category, model_version, sentiment, confidence_bin, length_bin;
