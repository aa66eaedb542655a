-- Per minute, product, category and keyword: the distinct NEGATIVE reviews that carry the
-- keyword (jieba keywords plus the canonical complaint keywords, like negative_keywords_hour
-- but at minute grain for the alert windows). curated = 1 when the keyword is one of the
-- review's complaint keywords (the curated lexicon, matched at ingest with negation
-- handling); the alert engine counts a review as a complaint when it has a curated keyword
-- or a keyword its category learned (stream/reputation/lexicon.py). Merging a product's
-- keyword rows counts each review once. Fed by 0031, backfilled by 0032.
CREATE TABLE IF NOT EXISTS negative_keyword_minute
(
    minute DateTime('UTC'),
    product_id String,
    category String,
    keyword String,
    curated UInt8,
    reviews AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, product_id, keyword, curated, category);
