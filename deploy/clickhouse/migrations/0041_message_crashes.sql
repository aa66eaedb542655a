-- Input messages that were in hand when a worker process died (a crash, not a clean stop):
-- one row per message and dead attempt. A message with poison_crash_limit attempts or more
-- is dead-lettered as `poison` instead of being processed again (stream/pipeline/poison.py).
-- Count attempts with uniqExact(attempt): recording one attempt twice changes nothing.
-- Shared by every worker, so a message cannot crash each member of the group in turn.
CREATE TABLE IF NOT EXISTS message_crashes
(
    topic String,
    partition UInt32,
    offset UInt64,
    attempt String,
    worker String,
    crashed_at DateTime('UTC')
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(crashed_at)
ORDER BY (topic, partition, offset);
