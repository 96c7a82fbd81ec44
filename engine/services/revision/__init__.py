"""Revising running instances against another process version: migration and what-if."""
