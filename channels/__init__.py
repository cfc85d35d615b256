"""Channel adapters: each turns a wire event into an InboundMessage and delivers Acks back."""
