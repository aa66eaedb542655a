"""Product reputation: alert rules (pure), the alert engine (a worker timer), reports."""
