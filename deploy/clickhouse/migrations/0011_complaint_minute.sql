-- Per minute, product and complaint keyword: the distinct negative reviews that mention it.
-- Merging the states of all keywords of a product counts each review once, so the same
-- table gives "reviews with any complaint" exactly. Fed by 0012 and backfilled by 0013.
CREATE TABLE IF NOT EXISTS complaint_minute
(
    minute DateTime('UTC'),
    product_id String,
    category String,
    keyword String,
    reviews AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (product_id, minute, keyword, category)
