"""What comes in from outside the browser: e-mail (the inbound endpoint and the IMAP
poller) turned into incidents and notes by the contract's rules."""
