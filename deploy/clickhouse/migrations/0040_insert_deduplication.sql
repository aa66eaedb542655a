-- requires ClickHouse 22.2
-- Insert deduplication for retries (skipped on older servers, such as 18.16, where the review
-- store keeps its read-before-write check instead). The store sends each batch's reviews with
-- insert_deduplication_token = the batch's offset range per topic partition (and the month);
-- a retry of the same batch sends the same token, so each table below drops a block it has
-- already stored and takes one it missed: an insert that reached `reviews` but not every
-- materialized view (a view failed, or the client timed out after the server committed) is
-- completed on the retry (deduplicate_blocks_in_dependent_materialized_views). The window is
-- the number of recent blocks whose tokens each table remembers (about 15 minutes of batches
-- at 10 a second), long enough for a restarted worker to re-read what it had in hand.
ALTER TABLE reviews MODIFY SETTING non_replicated_deduplication_window = 10000;
ALTER TABLE sentiment_minute MODIFY SETTING non_replicated_deduplication_window = 10000;
ALTER TABLE negative_keywords_hour MODIFY SETTING non_replicated_deduplication_window = 10000;
ALTER TABLE complaint_minute MODIFY SETTING non_replicated_deduplication_window = 10000;
ALTER TABLE feedback_minute MODIFY SETTING non_replicated_deduplication_window = 10000;
ALTER TABLE traffic_minute MODIFY SETTING non_replicated_deduplication_window = 10000;
ALTER TABLE negative_keyword_minute MODIFY SETTING non_replicated_deduplication_window = 10000;
