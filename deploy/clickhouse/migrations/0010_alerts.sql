-- Quality alerts, one row per incident. The engine writes a row "pending" before it
-- publishes, "published" after the broker's ack, and a new version each time an open
-- incident is seen again (last_seen_at). Newest version wins: read with FINAL.
CREATE TABLE IF NOT EXISTS alerts
(
    alert_id String,
    kind String,
    severity String,
    subject_type String,
    subject String,
    category String,
    window_start DateTime('UTC'),
    window_end DateTime('UTC'),
    baseline_start DateTime('UTC'),
    raised_at DateTime('UTC'),
    last_seen_at DateTime('UTC'),
    status String,
    message String,
    sample_review_ids Array(String),
    payload String,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(raised_at)
ORDER BY alert_id
