"""Telling people and programs: the mail outbox and its sender, webhooks and their
deliveries.  What is sent is decided at commit (`committed`), from the events and
ready tasks the transaction wrote, so a notification is queued in the transaction
of the event that causes it and sent later by a loop of its own."""
