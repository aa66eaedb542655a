-- Per hour, product, category and keyword: the distinct NEGATIVE reviews that carry the
-- keyword (jieba keywords after stopwords, plus the canonical complaint keywords).
-- is_complaint = 1 when the keyword is one of the review's complaint keywords (the curated
-- complaint lexicon). Read with uniqExactMerge(reviews).
CREATE TABLE IF NOT EXISTS negative_keywords_hour
(
    hour DateTime('UTC'),
    product_id String,
    category String,
    keyword String,
    is_complaint UInt8,
    reviews AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, product_id, keyword, is_complaint, category);
