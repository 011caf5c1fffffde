"""Webhook ingress: verify a provider's signature, normalise the delivery into an
``Envelope`` and put it on the bus exactly once per delivery id.

``schemes`` holds the pure verifiers, ``request`` the inbound request model, ``ingest`` the
logic, ``adapters`` the EventBridge publisher.
"""
