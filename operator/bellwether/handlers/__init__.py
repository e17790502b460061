"""kopf wiring (`operator.py`) around one rollout cycle (`reconcile.py`); imported only by `bellwether run`."""
