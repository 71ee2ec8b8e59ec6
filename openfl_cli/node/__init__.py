"""Live participants built from specs: the aggregator and collaborator processes, the simulator, ping.

The one layer that joins the plan, the PKI and the framework-free core (`federation/`, `transport/`).
"""
