"""The connector catalog: one module per connector, each a ``Connector`` subclass whose
methods are its operations (request models, dispatch, default instance and Lambda handler
derive from them; ``aios.connectors.kit``)."""
