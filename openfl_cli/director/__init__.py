"""The Director: the central, long-lived node of the Workflow API's FederatedRuntime."""
