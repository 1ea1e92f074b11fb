"""smsconnect domain logic: storage, contacts, messages, campaigns. No Flask imports here."""
