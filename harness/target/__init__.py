"""Which service is under test, and how tokenproof starts, reaches and
checks it: the target's spec, starting and supervising it, the preflight,
the clients for the service and the Stripe emulator, its users."""
