-- Rolling reputation per product, from sentiment_minute:
--   *_1h, *_24h: the last hour / 24 h (minute buckets up to now, the current minute
--   included); *_prev_*: the same-length window just before; *_trend_*: current minus
--   previous (NULL when the previous window had no reviews). negative_ratio = negative / reviews; net_score = (positive - negative) /
--   reviews, in -1..1; both 0 without reviews.
--   rated_24h: reviews in the last 24 h that carried the customer's rating; agreement_24h:
--   the share whose model sentiment matches the rating (>= 4 positive, 3 neutral, <= 2
--   negative); the two disagreement counts show the worst confusions.
-- Counts are distinct reviews (uniqExact states merged), exact after duplicate delivery.
CREATE VIEW IF NOT EXISTS product_reputation AS
SELECT
    product_id,
    any(category) AS category,
    sumIf(n, minute > now_minute - 3600) AS reviews_1h,
    sumIf(n, minute > now_minute - 3600 AND sentiment = 'negative') AS negative_1h,
    sumIf(n, minute > now_minute - 3600 AND sentiment = 'positive') AS positive_1h,
    if(reviews_1h = 0, 0., negative_1h / reviews_1h) AS negative_ratio_1h,
    if(reviews_1h = 0, 0.,
       (toInt64(positive_1h) - toInt64(negative_1h)) / reviews_1h) AS net_score_1h,
    sumIf(n, minute > now_minute - 7200 AND minute <= now_minute - 3600) AS reviews_prev_1h,
    sumIf(n, minute > now_minute - 7200 AND minute <= now_minute - 3600 AND sentiment = 'negative') AS negative_prev_1h,
    sumIf(n, minute > now_minute - 7200 AND minute <= now_minute - 3600 AND sentiment = 'positive') AS positive_prev_1h,
    if(reviews_prev_1h = 0, 0., negative_prev_1h / reviews_prev_1h) AS negative_ratio_prev_1h,
    if(reviews_prev_1h = 0, 0.,
       (toInt64(positive_prev_1h) - toInt64(negative_prev_1h)) / reviews_prev_1h) AS net_score_prev_1h,
    if(reviews_prev_1h = 0, NULL, negative_ratio_1h - negative_ratio_prev_1h) AS negative_ratio_trend_1h,
    if(reviews_prev_1h = 0, NULL, net_score_1h - net_score_prev_1h) AS net_score_trend_1h,
    sumIf(n, minute > now_minute - 86400) AS reviews_24h,
    sumIf(n, minute > now_minute - 86400 AND sentiment = 'negative') AS negative_24h,
    sumIf(n, minute > now_minute - 86400 AND sentiment = 'positive') AS positive_24h,
    if(reviews_24h = 0, 0., negative_24h / reviews_24h) AS negative_ratio_24h,
    if(reviews_24h = 0, 0.,
       (toInt64(positive_24h) - toInt64(negative_24h)) / reviews_24h) AS net_score_24h,
    sumIf(n, minute > now_minute - 172800 AND minute <= now_minute - 86400) AS reviews_prev_24h,
    sumIf(n, minute > now_minute - 172800 AND minute <= now_minute - 86400 AND sentiment = 'negative') AS negative_prev_24h,
    sumIf(n, minute > now_minute - 172800 AND minute <= now_minute - 86400 AND sentiment = 'positive') AS positive_prev_24h,
    if(reviews_prev_24h = 0, 0., negative_prev_24h / reviews_prev_24h) AS negative_ratio_prev_24h,
    if(reviews_prev_24h = 0, 0.,
       (toInt64(positive_prev_24h) - toInt64(negative_prev_24h)) / reviews_prev_24h) AS net_score_prev_24h,
    if(reviews_prev_24h = 0, NULL, negative_ratio_24h - negative_ratio_prev_24h) AS negative_ratio_trend_24h,
    if(reviews_prev_24h = 0, NULL, net_score_24h - net_score_prev_24h) AS net_score_trend_24h,
    sumIf(n, minute > now_minute - 86400 AND rating > 0) AS rated_24h,
    sumIf(n, minute > now_minute - 86400 AND rating > 0 AND model_label = rating_label) AS agreeing_24h,
    if(rated_24h = 0, 0., agreeing_24h / rated_24h) AS agreement_24h,
    sumIf(n, minute > now_minute - 86400 AND rating > 0 AND model_label = 1 AND rating_label = -1) AS positive_but_rated_low_24h,
    sumIf(n, minute > now_minute - 86400 AND rating > 0 AND model_label = -1 AND rating_label = 1) AS negative_but_rated_high_24h
FROM
(
    SELECT
        product_id, category, minute, sentiment, rating,
        toStartOfMinute(now()) AS now_minute,
        CAST(sentiment AS Int8) AS model_label,
        multiIf(rating >= 4, 1, rating = 3, 0, -1) AS rating_label,
        uniqExactMerge(reviews) AS n
    FROM sentiment_minute
    WHERE minute > toStartOfMinute(now()) - 172800
    GROUP BY product_id, category, minute, sentiment, rating
)
GROUP BY product_id
