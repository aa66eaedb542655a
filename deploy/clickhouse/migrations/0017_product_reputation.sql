-- Rolling reputation per product: the last 1 h and 24 h (minute buckets up to now,
-- the current minute included), the same-length window before each, and the trend
-- (current minus previous). negative_ratio = negative / reviews, net_score =
-- (positive - negative) / reviews in -1..1, 0 without reviews. Counts are distinct reviews
-- (uniqExact states merged), exact after duplicate delivery. Joined with the agreement
-- between the model's sentiment and the customer's rating over the last 24 h (rating >= 4
-- positive, 3 neutral, <= 2 negative): rated_24h reviews carried a rating, agreement_24h
-- is the share whose model sentiment matched it.
CREATE VIEW IF NOT EXISTS product_reputation AS
SELECT product_id, category, reviews_1h, negative_1h, positive_1h, negative_ratio_1h,
    net_score_1h, reviews_prev_1h, negative_prev_1h, positive_prev_1h, negative_ratio_prev_1h,
    net_score_prev_1h, negative_ratio_trend_1h, net_score_trend_1h, reviews_24h, negative_24h,
    positive_24h, negative_ratio_24h, net_score_24h, reviews_prev_24h, negative_prev_24h,
    positive_prev_24h, negative_ratio_prev_24h, net_score_prev_24h, negative_ratio_trend_24h,
    net_score_trend_24h, rated_24h, agreeing_24h, agreement_24h, positive_but_rated_low_24h,
    negative_but_rated_high_24h
FROM
(
    SELECT
    product_id,
    any(category) AS category,
    sumIf(n, minute > now_minute - 3600) AS reviews_1h,
    sumIf(n, minute > now_minute - 3600 AND sentiment = 'negative') AS negative_1h,
    sumIf(n, minute > now_minute - 3600 AND sentiment = 'positive') AS positive_1h,
    if(reviews_1h = 0, 0., negative_1h / reviews_1h) AS negative_ratio_1h,
    if(reviews_1h = 0, 0., (toInt64(positive_1h) - toInt64(negative_1h)) / reviews_1h) AS net_score_1h,
    sumIf(n, minute > now_minute - 7200 AND minute <= now_minute - 3600) AS reviews_prev_1h,
    sumIf(n, minute > now_minute - 7200 AND minute <= now_minute - 3600 AND sentiment = 'negative') AS negative_prev_1h,
    sumIf(n, minute > now_minute - 7200 AND minute <= now_minute - 3600 AND sentiment = 'positive') AS positive_prev_1h,
    if(reviews_prev_1h = 0, 0., negative_prev_1h / reviews_prev_1h) AS negative_ratio_prev_1h,
    if(reviews_prev_1h = 0, 0., (toInt64(positive_prev_1h) - toInt64(negative_prev_1h)) / reviews_prev_1h) AS net_score_prev_1h,
    negative_ratio_1h - negative_ratio_prev_1h AS negative_ratio_trend_1h,
    net_score_1h - net_score_prev_1h AS net_score_trend_1h,
    sumIf(n, minute > now_minute - 86400) AS reviews_24h,
    sumIf(n, minute > now_minute - 86400 AND sentiment = 'negative') AS negative_24h,
    sumIf(n, minute > now_minute - 86400 AND sentiment = 'positive') AS positive_24h,
    if(reviews_24h = 0, 0., negative_24h / reviews_24h) AS negative_ratio_24h,
    if(reviews_24h = 0, 0., (toInt64(positive_24h) - toInt64(negative_24h)) / reviews_24h) AS net_score_24h,
    sumIf(n, minute > now_minute - 172800 AND minute <= now_minute - 86400) AS reviews_prev_24h,
    sumIf(n, minute > now_minute - 172800 AND minute <= now_minute - 86400 AND sentiment = 'negative') AS negative_prev_24h,
    sumIf(n, minute > now_minute - 172800 AND minute <= now_minute - 86400 AND sentiment = 'positive') AS positive_prev_24h,
    if(reviews_prev_24h = 0, 0., negative_prev_24h / reviews_prev_24h) AS negative_ratio_prev_24h,
    if(reviews_prev_24h = 0, 0., (toInt64(positive_prev_24h) - toInt64(negative_prev_24h)) / reviews_prev_24h) AS net_score_prev_24h,
    negative_ratio_24h - negative_ratio_prev_24h AS negative_ratio_trend_24h,
    net_score_24h - net_score_prev_24h AS net_score_trend_24h
    FROM
    (
        SELECT product_id, category, minute, sentiment, toStartOfMinute(now()) AS now_minute,
               uniqExactMerge(reviews) AS n
        FROM sentiment_minute
        WHERE minute > toStartOfMinute(now()) - 172800
        GROUP BY product_id, category, minute, sentiment
    )
    GROUP BY product_id
) AS current
ANY LEFT JOIN
(
    SELECT
        product_id,
        sum(n) AS rated_24h,
        sumIf(n, sentiment = rating_sentiment) AS agreeing_24h,
        if(rated_24h = 0, 0., agreeing_24h / rated_24h) AS agreement_24h,
        sumIf(n, rating_sentiment = 'negative' AND sentiment = 'positive') AS positive_but_rated_low_24h,
        sumIf(n, rating_sentiment = 'positive' AND sentiment = 'negative') AS negative_but_rated_high_24h
    FROM
    (
        SELECT product_id, minute, sentiment, rating_sentiment, uniqExactMerge(reviews) AS n
        FROM rating_minute
        WHERE minute > toStartOfMinute(now()) - 86400
        GROUP BY product_id, minute, sentiment, rating_sentiment
    )
    GROUP BY product_id
) AS rated USING product_id
