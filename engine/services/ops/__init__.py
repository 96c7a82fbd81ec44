"""Running the service: the background worker."""
