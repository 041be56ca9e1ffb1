"""Sensitive personal information (PIPL): encryption, blind indexes, masking, reveal logs, consent."""
