"""Inbound wire formats: each module turns one API's requests into the pipeline's chat-shaped
call and renders the pipeline's answer back. The pipeline (gateway/service.py) never knows
which format a call came in on."""
