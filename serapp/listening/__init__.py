"""The human benchmark without Qt: clip selection, the durable answer file, resume, and scores."""
