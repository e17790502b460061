"""Webhooks over HTTP: the operator's notifications (a bounded background queue) and its gates.

The one I/O module set of the webhooks: the rollout core decides which gates to ask and which
notifications a cycle amounts to (`rollout/gates.py`, `rollout/notices.py`); this package calls them.
URLs and header values read from Secrets are never logged, and never in a gate's answer as recorded.
"""

from bellwether.hooks.delivery import Notifier, Receiver
from bellwether.hooks.gates import webhook_gates
from bellwether.hooks.secrets import Resolve, SecretError

__all__ = ["Notifier", "Receiver", "Resolve", "SecretError", "webhook_gates"]
