"""After the send: SendGrid events, bounce mailboxes and clicks, kept apart from the delivery log."""
