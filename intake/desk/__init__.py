"""The agents' side of the core: accounts, actions on tickets, the SLA watcher."""
