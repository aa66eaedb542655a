"""ClickHouse sink: backends (native server, embedded chdb), migrations, the review store."""
