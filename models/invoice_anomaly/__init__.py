"""The invoice anomaly scorer: generator, training, ONNX export, Triton config, registry.

Empty on purpose: ``models.invoice_anomaly.serving`` must import without torch.
"""
