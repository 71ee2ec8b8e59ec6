"""Building the aggregator and collaborators from a plan and running them over the gRPC transport."""
