"""Bellwether: safe canary rollouts for ML model serving on Kubernetes."""
