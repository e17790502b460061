"""Stand-ins, over real HTTP on loopback, for what the operator process talks to: a Kubernetes API
server with the controllers of its control plane, and Prometheus' query API. The operator tests and
the scale benchmark run the real `bellwether run` against them; nothing in the operator imports them.

    apiserver    the Kubernetes API on aiohttp: discovery, list/watch, apply, finalizers, garbage collection, faults
    eviction     the Eviction API's PodDisruptionBudget checks, as the API server makes them
    controllers  Deployment, ReplicaSet and EndpointSlice controllers, scheduler and kubelets, as upstream's
    kubelet      runs the controllers against some stand-ins, and reads which pods back a Service
    clock        the wall clock the stand-ins share, in Kubernetes' timestamp form
    prometheus   `/api/v1/query` and `/api/v1/query_range` answered by a rule over the query's labels
    process      the real `bellwether run` process pointed at a stand-in
"""
