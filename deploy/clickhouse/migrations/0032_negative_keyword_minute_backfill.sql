-- Reviews stored before 0031 existed. Idempotent: uniqExact states of the same review ids
-- merge to the same counts however often this runs or overlaps with the live view.
INSERT INTO negative_keyword_minute
SELECT
    toStartOfMinute(created_at) AS minute,
    product_id,
    category,
    keyword,
    toUInt8(has(complaint_keywords, keyword)) AS curated,
    uniqExactState(review_id) AS reviews
FROM reviews FINAL
ARRAY JOIN arrayDistinct(arrayConcat(keywords, complaint_keywords)) AS keyword
WHERE sentiment = 'negative'
GROUP BY minute, product_id, category, keyword, curated;
