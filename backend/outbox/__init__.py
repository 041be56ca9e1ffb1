"""Transactional outbox: side effects recorded with the state change, relayed to RQ afterwards."""
