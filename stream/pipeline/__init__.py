"""The batch as an ordered chain of small steps (``chain.BatchChain``):

    validate ─┬─ dead-letter ──────────────────────────┐
              └─ classify ─┬─ publish sentiment events ─┼─ return = safe to ack
                           └─ store rows ───────────────┘

Each step is a small object with one job, tested on its own; retrying is a wrapper
(``retry.Retrying``) around the steps that talk to a sink; and the one rule that matters,
"``process`` returning means every output of the batch is durable", is written once, in
``BatchChain.process``. Nothing here knows Faust: the agent converts its events to
``Incoming`` and hands the chain plain send functions.
"""
