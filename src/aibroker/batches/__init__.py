"""OpenAI's Files and Batch APIs: uploaded files in blob storage, batches whose lines run on
the job queue through the gateway, each held, billed and recorded like a live request."""
