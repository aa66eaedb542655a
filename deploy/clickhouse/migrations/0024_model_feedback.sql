-- Rolling rating feedback per category and model version, from feedback_minute:
--   rated_*: rated reviews in the last hour / 24 h (minute buckets up to now, the current
--   minute included); agreement_*: the share whose model sentiment equals the rated label
--   (0 without rated reviews); clear_*: the same over reviews rated 1-2 or 4-5 only, where
--   a neutral prediction counts as a miss (comparable with a two-class model's validation
--   accuracy); neutral_but_rated_clear_24h: served neutral though rated clearly good or bad;
--   positive_but_rated_low_24h / negative_but_rated_high_24h: the worst confusions.
-- Counts are distinct reviews (uniqExact states merged), exact after duplicate delivery.
CREATE VIEW IF NOT EXISTS model_feedback AS
SELECT
    category,
    model_version,
    sumIf(n, minute > now_minute - 3600) AS rated_1h,
    sumIf(n, minute > now_minute - 3600 AND predicted = actual) AS agreeing_1h,
    if(rated_1h = 0, 0., agreeing_1h / rated_1h) AS agreement_1h,
    sum(n) AS rated_24h,
    sumIf(n, predicted = actual) AS agreeing_24h,
    if(rated_24h = 0, 0., agreeing_24h / rated_24h) AS agreement_24h,
    sumIf(n, actual != 0) AS clear_rated_24h,
    sumIf(n, actual != 0 AND predicted = actual) AS clear_agreeing_24h,
    if(clear_rated_24h = 0, 0., clear_agreeing_24h / clear_rated_24h) AS clear_agreement_24h,
    sumIf(n, actual != 0 AND predicted = 0) AS neutral_but_rated_clear_24h,
    sumIf(n, predicted = 1 AND actual = -1) AS positive_but_rated_low_24h,
    sumIf(n, predicted = -1 AND actual = 1) AS negative_but_rated_high_24h
FROM
(
    SELECT
        category, model_version, minute,
        toStartOfMinute(now()) AS now_minute,
        CAST(sentiment AS Int8) AS predicted,
        CAST(rated AS Int8) AS actual,
        uniqExactMerge(reviews) AS n
    FROM feedback_minute
    WHERE minute > toStartOfMinute(now()) - 86400
    GROUP BY category, model_version, minute, sentiment, rated
)
GROUP BY category, model_version
