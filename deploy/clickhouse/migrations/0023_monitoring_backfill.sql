-- Reviews stored before 0021 and 0022 existed. Idempotent: uniqExact states of the same
-- review ids merge to the same counts however often this runs or overlaps with the live
-- views. The traffic backfill carries counts only (token sums of 0): rows stored before
-- 0020 have no token counts anyway, and a row the live view already summed is not summed
-- twice.
INSERT INTO feedback_minute
SELECT
    toStartOfMinute(created_at) AS minute,
    category,
    model_version,
    sentiment,
    CAST(multiIf(ifNull(rating, 0) >= 4, 'positive', ifNull(rating, 0) = 3, 'neutral', 'negative')
         AS Enum8('negative' = -1, 'neutral' = 0, 'positive' = 1)) AS rated,
    uniqExactState(review_id) AS reviews
FROM reviews FINAL
WHERE isNotNull(rating)
GROUP BY minute, category, model_version, sentiment, rated;

INSERT INTO traffic_minute
SELECT
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
    sumState(toUInt64(0)) AS token_sum,
    sumState(toUInt64(0)) AS unknown_token_sum
FROM reviews FINAL
GROUP BY minute, category, model_version, sentiment, confidence_bin, length_bin;
