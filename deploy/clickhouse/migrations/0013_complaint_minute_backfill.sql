-- Reviews stored before 0012 existed. Idempotent: uniqExact states of the same review ids
-- merge to the same counts however often this runs or overlaps with the live view.
INSERT INTO complaint_minute
SELECT
    toStartOfMinute(created_at) AS minute,
    product_id,
    category,
    keyword,
    uniqExactState(review_id) AS reviews
FROM reviews FINAL
ARRAY JOIN complaint_keywords AS keyword
WHERE sentiment = 'negative'
GROUP BY minute, product_id, category, keyword
