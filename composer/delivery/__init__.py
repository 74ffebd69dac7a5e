"""Delivery: personalised messages, the delivery log, transports, and the send runner."""
