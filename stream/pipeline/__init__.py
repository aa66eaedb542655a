"""The batch as an ordered chain of small steps (``chain.BatchChain``):

    front (the agent's task)   the batch's flight (``inflight.InflightWindow``)
    validate ───────────────── classify ─┬─ dead-letter ──────────────┐
                                         ├─ publish sentiment events ─┼─ earlier acked ─ ack
                                         └─ store rows ───────────────┘

Each step is a small object with one job, tested on its own; retrying is a wrapper
(``retry.Retrying``) around the steps that talk to a sink; and the one rule that matters,
"a batch is acked only once every output of it, and of every batch before it, is durable",
is written once, in ``BatchChain``. The next batch is taken and validated while earlier
batches are classified and written, at most ``max-inflight-batches`` in flight. Nothing here
knows Faust: the agent converts its events to ``Incoming`` and hands the chain plain send and
ack functions.
"""
