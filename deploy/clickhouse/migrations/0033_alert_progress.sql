-- How far in event time the alert engine has evaluated: the minute bucket of its last
-- evaluation step. A restarted or newly elected evaluator resumes from the newest row
-- (max(evaluated_until)) instead of judging a gap it never looked at as quiet.
CREATE TABLE IF NOT EXISTS alert_progress
(
    name String,
    evaluated_until DateTime('UTC'),
    updated_at DateTime('UTC'),
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY name;
