"""Model health: how the served model does on live traffic.

Two signals, both read from ClickHouse aggregates that materialized views keep per minute,
category and model version (migrations 0020-0024):

* rating feedback (``feedback_minute``): a star rating is a weak label, so agreement between
  prediction and rating, and the confusion of the two, say how well the model does;
* drift (``traffic_minute``): label shares, confidences, unknown tokens and text lengths of a
  window, compared with the reference profile the model card carries (``model.profile``).

``rules`` turns those figures into findings (``model_drift``, ``feedback_drop``; pure),
``alerts`` builds their ``review.alerts`` events (pure), ``queries`` reads the figures,
``health`` evaluates everything for one moment and refreshes the agreement gauge, and
``report`` is the model section of ``reviewpulse report``.
"""
