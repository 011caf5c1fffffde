"""The platform's ML packages, one per served model (``models.invoice_anomaly``).

Each package's ``serving`` module is importable without torch (the CDK app and the local mode
read it); ``build`` trains and packages its artifacts. ``python -m models`` builds every model
the platform description declares.
"""
