-- Reputation views that count a review once even when its stored copies disagree (issue 11):
-- a batch re-read by a new model version, or int8 scores that moved with the batch-mates,
-- can give one review_id two sentiments, which sentiment_minute keeps in two rows. Counting
-- per sentiment and summing counted such a review twice. Now, per minute, product (or
-- category) and rating: total = distinct reviews over every sentiment; a review is negative
-- if any copy says so, else neutral if any copy says so, else positive (the order the alert
-- engine already counts negatives in), so negative + neutral + positive = total. Same columns
-- as 0014/0015; positive and neutral counts are Int64 (differences of distinct counts).

DROP TABLE IF EXISTS product_reputation;

CREATE VIEW IF NOT EXISTS product_reputation AS
SELECT
    product_id,
    any(category) AS category,
    sumIf(total, minute > now_minute - 3600) AS reviews_1h,
    sumIf(negative, minute > now_minute - 3600) AS negative_1h,
    sumIf(positive, minute > now_minute - 3600) AS positive_1h,
    if(reviews_1h = 0, 0., negative_1h / reviews_1h) AS negative_ratio_1h,
    if(reviews_1h = 0, 0.,
       (toInt64(positive_1h) - toInt64(negative_1h)) / reviews_1h) AS net_score_1h,
    sumIf(total, minute > now_minute - 7200 AND minute <= now_minute - 3600) AS reviews_prev_1h,
    sumIf(negative, minute > now_minute - 7200 AND minute <= now_minute - 3600) AS negative_prev_1h,
    sumIf(positive, minute > now_minute - 7200 AND minute <= now_minute - 3600) AS positive_prev_1h,
    if(reviews_prev_1h = 0, 0., negative_prev_1h / reviews_prev_1h) AS negative_ratio_prev_1h,
    if(reviews_prev_1h = 0, 0.,
       (toInt64(positive_prev_1h) - toInt64(negative_prev_1h)) / reviews_prev_1h) AS net_score_prev_1h,
    if(reviews_prev_1h = 0, NULL, negative_ratio_1h - negative_ratio_prev_1h) AS negative_ratio_trend_1h,
    if(reviews_prev_1h = 0, NULL, net_score_1h - net_score_prev_1h) AS net_score_trend_1h,
    sumIf(total, minute > now_minute - 86400) AS reviews_24h,
    sumIf(negative, minute > now_minute - 86400) AS negative_24h,
    sumIf(positive, minute > now_minute - 86400) AS positive_24h,
    if(reviews_24h = 0, 0., negative_24h / reviews_24h) AS negative_ratio_24h,
    if(reviews_24h = 0, 0.,
       (toInt64(positive_24h) - toInt64(negative_24h)) / reviews_24h) AS net_score_24h,
    sumIf(total, minute > now_minute - 172800 AND minute <= now_minute - 86400) AS reviews_prev_24h,
    sumIf(negative, minute > now_minute - 172800 AND minute <= now_minute - 86400) AS negative_prev_24h,
    sumIf(positive, minute > now_minute - 172800 AND minute <= now_minute - 86400) AS positive_prev_24h,
    if(reviews_prev_24h = 0, 0., negative_prev_24h / reviews_prev_24h) AS negative_ratio_prev_24h,
    if(reviews_prev_24h = 0, 0.,
       (toInt64(positive_prev_24h) - toInt64(negative_prev_24h)) / reviews_prev_24h) AS net_score_prev_24h,
    if(reviews_prev_24h = 0, NULL, negative_ratio_24h - negative_ratio_prev_24h) AS negative_ratio_trend_24h,
    if(reviews_prev_24h = 0, NULL, net_score_24h - net_score_prev_24h) AS net_score_trend_24h,
    sumIf(total, minute > now_minute - 86400 AND rating > 0) AS rated_24h,
    sumIf(multiIf(rating_label = -1, toInt64(negative), rating_label = 0, neutral, positive),
          minute > now_minute - 86400 AND rating > 0) AS agreeing_24h,
    if(rated_24h = 0, 0., agreeing_24h / rated_24h) AS agreement_24h,
    sumIf(positive, minute > now_minute - 86400 AND rating > 0 AND rating_label = -1) AS positive_but_rated_low_24h,
    sumIf(negative, minute > now_minute - 86400 AND rating > 0 AND rating_label = 1) AS negative_but_rated_high_24h
FROM
(
    SELECT
        product_id, category, minute, rating,
        toStartOfMinute(now()) AS now_minute,
        multiIf(rating >= 4, 1, rating = 3, 0, -1) AS rating_label,
        uniqExactMerge(reviews) AS total,
        uniqExactMergeIf(reviews, sentiment = 'negative') AS negative,
        toInt64(uniqExactMergeIf(reviews, sentiment != 'positive')) - toInt64(negative) AS neutral,
        toInt64(total) - toInt64(negative) - neutral AS positive
    FROM sentiment_minute
    WHERE minute > toStartOfMinute(now()) - 172800
    GROUP BY product_id, category, minute, rating
)
GROUP BY product_id;

DROP TABLE IF EXISTS category_reputation;

CREATE VIEW IF NOT EXISTS category_reputation AS
SELECT
    category,
    sumIf(total, minute > now_minute - 3600) AS reviews_1h,
    sumIf(negative, minute > now_minute - 3600) AS negative_1h,
    sumIf(positive, minute > now_minute - 3600) AS positive_1h,
    if(reviews_1h = 0, 0., negative_1h / reviews_1h) AS negative_ratio_1h,
    if(reviews_1h = 0, 0.,
       (toInt64(positive_1h) - toInt64(negative_1h)) / reviews_1h) AS net_score_1h,
    sumIf(total, minute > now_minute - 7200 AND minute <= now_minute - 3600) AS reviews_prev_1h,
    sumIf(negative, minute > now_minute - 7200 AND minute <= now_minute - 3600) AS negative_prev_1h,
    sumIf(positive, minute > now_minute - 7200 AND minute <= now_minute - 3600) AS positive_prev_1h,
    if(reviews_prev_1h = 0, 0., negative_prev_1h / reviews_prev_1h) AS negative_ratio_prev_1h,
    if(reviews_prev_1h = 0, 0.,
       (toInt64(positive_prev_1h) - toInt64(negative_prev_1h)) / reviews_prev_1h) AS net_score_prev_1h,
    if(reviews_prev_1h = 0, NULL, negative_ratio_1h - negative_ratio_prev_1h) AS negative_ratio_trend_1h,
    if(reviews_prev_1h = 0, NULL, net_score_1h - net_score_prev_1h) AS net_score_trend_1h,
    sumIf(total, minute > now_minute - 86400) AS reviews_24h,
    sumIf(negative, minute > now_minute - 86400) AS negative_24h,
    sumIf(positive, minute > now_minute - 86400) AS positive_24h,
    if(reviews_24h = 0, 0., negative_24h / reviews_24h) AS negative_ratio_24h,
    if(reviews_24h = 0, 0.,
       (toInt64(positive_24h) - toInt64(negative_24h)) / reviews_24h) AS net_score_24h,
    sumIf(total, minute > now_minute - 172800 AND minute <= now_minute - 86400) AS reviews_prev_24h,
    sumIf(negative, minute > now_minute - 172800 AND minute <= now_minute - 86400) AS negative_prev_24h,
    sumIf(positive, minute > now_minute - 172800 AND minute <= now_minute - 86400) AS positive_prev_24h,
    if(reviews_prev_24h = 0, 0., negative_prev_24h / reviews_prev_24h) AS negative_ratio_prev_24h,
    if(reviews_prev_24h = 0, 0.,
       (toInt64(positive_prev_24h) - toInt64(negative_prev_24h)) / reviews_prev_24h) AS net_score_prev_24h,
    if(reviews_prev_24h = 0, NULL, negative_ratio_24h - negative_ratio_prev_24h) AS negative_ratio_trend_24h,
    if(reviews_prev_24h = 0, NULL, net_score_24h - net_score_prev_24h) AS net_score_trend_24h,
    sumIf(total, minute > now_minute - 86400 AND rating > 0) AS rated_24h,
    sumIf(multiIf(rating_label = -1, toInt64(negative), rating_label = 0, neutral, positive),
          minute > now_minute - 86400 AND rating > 0) AS agreeing_24h,
    if(rated_24h = 0, 0., agreeing_24h / rated_24h) AS agreement_24h,
    sumIf(positive, minute > now_minute - 86400 AND rating > 0 AND rating_label = -1) AS positive_but_rated_low_24h,
    sumIf(negative, minute > now_minute - 86400 AND rating > 0 AND rating_label = 1) AS negative_but_rated_high_24h
FROM
(
    SELECT
        category, minute, rating,
        toStartOfMinute(now()) AS now_minute,
        multiIf(rating >= 4, 1, rating = 3, 0, -1) AS rating_label,
        uniqExactMerge(reviews) AS total,
        uniqExactMergeIf(reviews, sentiment = 'negative') AS negative,
        toInt64(uniqExactMergeIf(reviews, sentiment != 'positive')) - toInt64(negative) AS neutral,
        toInt64(total) - toInt64(negative) - neutral AS positive
    FROM sentiment_minute
    WHERE minute > toStartOfMinute(now()) - 172800
    GROUP BY category, minute, rating
)
GROUP BY category;
