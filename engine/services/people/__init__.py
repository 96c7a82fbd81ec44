"""People: users, roles, sign-in, passwords and API tokens; API keys of integration
users; vendor organisations; addresses, languages and preferences (profiles)."""
