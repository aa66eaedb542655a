"""Local infrastructure: a Tansu broker and a scratch clickhouse-server on loopback ports."""
