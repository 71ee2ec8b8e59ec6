"""The director's protocol (EnvoyLink, Experiments): its server, its clients and the state stream."""
