"""`python -m harness.emulator ...`: the same command as `tokenproof stripe-emulator`."""

from harness.emulator.command import stripe_emulator

if __name__ == "__main__":
    stripe_emulator(prog_name="python -m harness.emulator")
