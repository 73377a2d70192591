"""Recordings (seed 002's Recordings, Storage and Audio Processing services): chunked and
direct uploads onto blob storage, plan limits, and the audio worker that transcribes and
analyses through the gateway."""
