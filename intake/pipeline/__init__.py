"""The pipeline: identify, thread, classify, decide, store in one transaction."""
