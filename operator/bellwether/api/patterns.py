"""String formats of the spec, each with the words an error message uses instead of the raw regex.

The regexes go into the CRD as `pattern` (so `kubectl apply` checks them) and into the models; the
meanings are what `bellwether validate` prints, since nobody should have to read a regex to fix a typo.
"""

from __future__ import annotations

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
METRIC_NAME = r"^[a-z0-9]([-a-z0-9_.]{0,61}[a-z0-9])?$"
ENV_NAME = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$"
HTTP_PATH = r"^/.*$"
HTTP_URL = r"^https?://.+$"

MEANING = {
    DNS_LABEL: "a DNS label: lowercase letters, digits and '-', starting and ending with a letter or digit (e.g. us-east)",
    DNS_SUBDOMAIN: "a Kubernetes object name: lowercase letters, digits, '-' and '.', starting and ending with a "
    "letter or digit",
    METRIC_NAME: "lowercase letters, digits, '-', '_' and '.', starting and ending with a letter or digit "
    "(e.g. p99-latency)",
    ENV_NAME: "an environment variable name: letters, digits, '_', '-' and '.', not starting with a digit",
    QUANTITY: "a Kubernetes quantity such as 8, 500m, 64Gi or 1.5",
    HTTP_PATH: "an HTTP path starting with / (e.g. /health)",
    HTTP_URL: "an http:// or https:// URL (e.g. http://prometheus.monitoring:9090)",
}


def meaning(pattern: str) -> str:
    """What a pattern allows, in words; a regex nobody registered is still not shown raw."""
    return MEANING.get(pattern, "in the documented format (see docs/reference.md)")
