"""The Envoy: a data owner's long-lived node of the Workflow API's FederatedRuntime."""
