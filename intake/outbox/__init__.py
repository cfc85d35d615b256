"""What we send and how: acknowledgements, alerts, delivery, bounces."""
