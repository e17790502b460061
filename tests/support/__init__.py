"""What the tests share, importable from every tier as `support.<module>` (pytest puts tests/ on the
path: `pythonpath` in pyproject.toml). conftest.py files keep only fixtures.

    specs           the one ModelDeployment builder: spec documents, parsed specs, manifests, revisions
    engine          the engine's stories on `bellwether.sim.engine_world`: their spec and what they read
    operator_world  the operator tests' clusters, Prometheus and operator process, and their ModelDeployment
    invariants      what must hold over an API server stand-in's history (capacity, status)
    waiting         `eventually`: wait for what the operator does on its own time
    promserver      a real Prometheus (Debian's package) scraping the simulator's exporter, or backfilled
    chartkit        the Helm chart rendered by a real `helm`
    crdkit          the generated CRD admitting objects as the API server does (schema, CEL)
    celcost         the CRD's CEL rules' estimated cost, as the API server estimates it
    sim_objects     Kubernetes objects for the simulator's clusters
    sim_invariants  what must hold over a simulated run
    hookkit         the hooks tests' spec and rollout on the simulator
    receiver        a webhook receiver on loopback that records what it is sent and answers as told

The stand-ins the benchmarks need too (the API server, its controllers, a Prometheus, the operator
process, the engine's world) live in the package, under `bellwether.sim`.
"""
