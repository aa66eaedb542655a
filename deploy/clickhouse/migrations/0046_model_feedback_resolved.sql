-- model_feedback (0024) counting a review once even when its stored copies disagree (issue
-- 11): a batch re-read, or int8 scores that moved with the batch-mates, can give one
-- review_id two sentiments under one model version, which feedback_minute keeps in two
-- cells. Summing the cells counted such a review twice. Now, per minute, category, model
-- version and rated label: rated = distinct reviews over every sentiment; a review counts as
-- negative if any copy says so, else neutral if any copy says so, else positive (the order
-- of the reputation views, 0042, and of stream.monitoring.queries), so the three add up to
-- rated. Same columns as 0024; the agreeing and confusion counts are Int64 (differences of
-- distinct counts).

DROP TABLE IF EXISTS model_feedback;

CREATE VIEW IF NOT EXISTS model_feedback AS
SELECT
    category,
    model_version,
    sumIf(total, minute > now_minute - 3600) AS rated_1h,
    sumIf(agreeing, minute > now_minute - 3600) AS agreeing_1h,
    if(rated_1h = 0, 0., agreeing_1h / rated_1h) AS agreement_1h,
    sum(total) AS rated_24h,
    sum(agreeing) AS agreeing_24h,
    if(rated_24h = 0, 0., agreeing_24h / rated_24h) AS agreement_24h,
    sumIf(total, actual != 0) AS clear_rated_24h,
    sumIf(agreeing, actual != 0) AS clear_agreeing_24h,
    if(clear_rated_24h = 0, 0., clear_agreeing_24h / clear_rated_24h) AS clear_agreement_24h,
    sumIf(neutral, actual != 0) AS neutral_but_rated_clear_24h,
    sumIf(positive, actual = -1) AS positive_but_rated_low_24h,
    sumIf(negative, actual = 1) AS negative_but_rated_high_24h
FROM
(
    SELECT
        category, model_version, minute,
        toStartOfMinute(now()) AS now_minute,
        CAST(rated AS Int8) AS actual,
        uniqExactMerge(reviews) AS total,
        uniqExactMergeIf(reviews, sentiment = 'negative') AS negative,
        toInt64(uniqExactMergeIf(reviews, sentiment != 'positive')) - toInt64(negative) AS neutral,
        toInt64(total) - toInt64(negative) - neutral AS positive,
        multiIf(actual = -1, toInt64(negative), actual = 0, neutral, positive) AS agreeing
    FROM feedback_minute
    WHERE minute > toStartOfMinute(now()) - 86400
    GROUP BY category, model_version, minute, rated
)
GROUP BY category, model_version;
