"""Twilio: WhatsApp and SMS messaging, voice call-backs, the REST replier."""
