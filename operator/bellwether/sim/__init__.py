"""The simulated world: GPU clusters per region, a model-serving fleet, and a loop that runs the
operator's own engine, renderer and judge against them in virtual time.

    clock      virtual time shared by the world and the engine
    cluster    nodes with nvidia.com/gpu, a Deployment controller and a GPU-aware scheduler
    fleet      per-revision latency / error behaviour, noise, warm-up spikes, regional load
    world      a cluster per region of a spec, plus the fleet
    source     the metrics port (`analysis.source.MetricSource`) answered from the fleet
    runner     the reconcile loop: observe, analysis_due, measure, decide, render, apply
    scenarios  named situations for `bellwether simulate`, tests and the benchmark
    play       run a scenario and report the outcome
    exporter   the fleet as real Prometheus metrics, for tests against a real Prometheus

Two worlds serve the tests and the benchmarks, not `bellwether demo` or `simulate`:

    engine_world  the engine alone, with pods that start after a delay (the engine's tests and benchmark)
    standins      a Kubernetes API server, its controllers and Prometheus over HTTP, for the real
                  `bellwether run` process (the operator tests and the scale benchmark)
"""
